"""`GET /usage`: the caller's workspace's succeeded generations and their cost."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from accounts.schemas import UsageRead
from accounts.usage import GroupBy, parse_day, report_to_api, resolve_period, usage_report
from api.openapi import KEYED, bearer_scheme, error_responses
from deps import CallerDep, RuntimeDep, SessionDep

router = APIRouter(
    tags=["accounting"], dependencies=[Depends(bearer_scheme)], responses=error_responses(*KEYED)
)


@router.get("/usage", response_model=None, responses={200: {"model": UsageRead}})
def get_usage(
    caller: CallerDep,
    session: SessionDep,
    rt: RuntimeDep,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: Annotated[str | None, Query()] = None,
    group_by: Annotated[GroupBy, Query()] = "day",
) -> dict[str, Any]:
    """The caller's workspace's succeeded generations, summed by day, model or key, with a total."""
    start, end = resolve_period(parse_day(from_, "from"), parse_day(to, "to"), rt.clock().date())
    report = usage_report(session, caller.workspace_id, start, end, group_by)
    return report_to_api(report)
