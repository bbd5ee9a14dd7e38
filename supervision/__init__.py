"""OTP supervision: `from supervision import supervisor`."""

from . import supervisor

__all__ = ["supervisor"]
