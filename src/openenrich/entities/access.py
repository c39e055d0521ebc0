"""Who may do what on this surface: any key reads (records, job streams); starting,
cancelling and continuing jobs, and deleting records, need a member or admin key. A
`read` key is told so with the reference's words ("insufficient role")."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from openenrich.errors import Forbidden
from openenrich.tenancy.dependencies import ReaderPrincipal
from openenrich.tenancy.roles import Role
from openenrich.tenancy.tenant import Principal


async def writer(principal: ReaderPrincipal) -> Principal:
    if principal.role is Role.READ:
        raise Forbidden(
            "Insufficient role: this API key is read-only; this endpoint needs a member "
            "or admin key"
        )
    return principal


Writer = Annotated[Principal, Depends(writer)]
