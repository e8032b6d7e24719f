"""Dependencies of the routes: the service context, who may call what, and checked parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from libs.runtime.auth import ALL_ROLES, Principal, require
from libs.runtime.host import Ctx as Ctx

Admin = Annotated[Principal, Depends(require("admin"))]
Editor = Annotated[Principal, Depends(require("admin", "sales"))]
"""Who maintains partners: admin and sales."""
Reader = Annotated[Principal, Depends(require(*ALL_ROLES))]
"""Staff read every partner; a partner key reads only its own."""

