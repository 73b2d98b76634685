"""Shared Triton device function: float32 cos/sin of an angle given in float64 *turns*, accurate for huge angles.

:func:`cos_sin_turns` is the angle reduction used by the RoPE kernel (angle ``n theta_i``) and the S4D kernel
generator (phase ``l dt Im A``); both keep the angle in turns (``angle / 2 pi``) so that it can be reduced exactly.

Formula: with ``x`` the angle in turns (float64; for ``x = n tau`` with an exact integer n the product carries one
float64 rounding, ``|x| 2^-53``), ``f = x - floor(x + 1/2)`` in [-1/2, 1/2] (exact: whole turns removed),
``a = 2 pi f`` in [-pi, pi] (float64), split into float32 ``hi + lo`` (``|lo| <= ulp(hi)/2``), and

    cos a = cos hi - lo sin hi,    sin a = sin hi + lo cos hi

to first order (the neglected terms are ~lo^2/2 ~ 1e-14 relative), with float32 ``cos``/``sin`` of ``hi``:
libdevice on the GPU, NumPy's (``tl.cos``/``tl.sin``) in the interpreter, where libdevice is not implemented.
``2 pi`` is passed in as a float64 *value* (loaded from memory by the caller), not a literal, so no float32
rounding of the constant can slip in.

Layout: elementwise; ``x`` any float64 tile, the results float32 tiles of its shape.

Sources: Muller, "Elementary Functions" (2016), ch. 11 (additive range reduction; Cody-Waite style split of the
reduced argument); derived here: float32 m*theta at m ~ 1e6 errs up to ~0.06 rad.
"""

from veriformer.fast._triton.env import HAVE_TRITON, device_function, tl

__all__ = ["cos_sin_turns"]

if HAVE_TRITON:
    from triton.language.extra import libdevice

    @device_function
    def cos_sin_turns(x, two_pi, EMULATE: tl.constexpr):
        """(cos, sin) float32 of the angle ``2 pi x`` for a float64 tile ``x`` of turns (see module docstring)."""
        f = x - tl.floor(x + 0.5)
        red = f * two_pi
        hi = red.to(tl.float32)
        lo = (red - hi.to(tl.float64)).to(tl.float32)
        if EMULATE:
            c = tl.cos(hi)
            s = tl.sin(hi)
        else:
            c = libdevice.cos(hi)
            s = libdevice.sin(hi)
        return c - s * lo, s + c * lo
