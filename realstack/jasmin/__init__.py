"""Real Jasmin 0.11.0 for the real-stack profile: ``python -m realstack.jasmin install|up|down|status|configure``.

See ``__main__.py`` for the commands, ``jcli.py`` for the reusable jCli client and ``provision.py`` for what
``configure`` sets up.
"""

from realstack.jasmin.errors import JCliConnectionError, JCliError, RealStackError
from realstack.jasmin.jcli import JCli

__all__ = ["JCli", "JCliConnectionError", "JCliError", "RealStackError"]
