"""Where ``publish_file`` was before the desk became a package (``yizhan.daemon.desk.tools``).

Kept only for ``yizhan tool add`` (yizhan/cli/tools.py), which imports it from here; remove
this module once that import names ``yizhan.daemon.desk.tools``.
"""

from yizhan.daemon.desk.tools import publish_file

__all__ = ["publish_file"]
