"""reputation-monitor: per-tenant sending-reputation guard for SES and End User Messaging."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("reputation-monitor")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
