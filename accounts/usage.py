"""Usage and cost per workspace: `GET /usage` (routes.py) for authors, `manage.py usage` for operators.

Only succeeded jobs count (a failed job produced nothing to pay for), each on the UTC day it
was accepted, the same day the daily quota charges it to. Sums are done in Python over the
period's rows: `usage` is a JSON column whose shape is the upstream's, and a period's jobs
are few enough (bounded by the quota and the rate limits) that this stays cheap and portable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlmodel import Session, col, select

from accounts.models import ApiKey
from errors import InvalidInput
from generation.models import Generation, JobStatus

GroupBy = Literal["day", "model", "key"]
DEFAULT_DAYS = 30
TOKEN_FIELDS = ("input_tokens", "output_tokens", "text_tokens", "image_tokens")


@dataclass
class UsageRow:
    """One group's sums; `group` is the day (YYYY-MM-DD), the model, or the key id."""

    group: str | int | None
    key_name: str | None = None
    generations: int = 0
    images: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    text_tokens: int = 0
    image_tokens: int = 0
    estimated_cost_usd: float = 0.0

    def add(self, job: Generation) -> None:
        usage = job.usage or {}
        details = usage.get("input_tokens_details") or {}
        self.generations += 1
        self.images += len(job.image_numbers)
        self.input_tokens += _int(usage.get("input_tokens"))
        self.output_tokens += _int(usage.get("output_tokens"))
        self.text_tokens += _int(details.get("text_tokens"))
        self.image_tokens += _int(details.get("image_tokens"))
        self.estimated_cost_usd = round(self.estimated_cost_usd + (job.estimated_cost_usd or 0.0), 6)

    def as_dict(self, group_by: GroupBy) -> dict[str, Any]:
        sums = {
            "generations": self.generations,
            "images": self.images,
            **{name: getattr(self, name) for name in TOKEN_FIELDS},
            "estimated_cost_usd": self.estimated_cost_usd,
        }
        if group_by == "key":
            return {"key_id": self.group, "key_name": self.key_name, **sums}
        return {group_by: self.group, **sums}


@dataclass
class UsageReport:
    start: date
    end: date  # inclusive
    group_by: GroupBy
    rows: list[UsageRow] = field(default_factory=list)
    total: UsageRow = field(default_factory=lambda: UsageRow(group=None))


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and value > 0 else 0


def default_period(today: date) -> tuple[date, date]:
    """The last 30 days, today included."""
    return today - timedelta(days=DEFAULT_DAYS - 1), today


def parse_day(value: str | None, field_name: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field_name} must be a date like 2026-11-23", field=field_name) from None


def resolve_period(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """Fill in what the caller left out and check the order.

    No dates: the 30 days up to today. Only `from`: up to today. Only `to`: the 30 days up to it.
    """
    end = end or today
    start = start or default_period(end)[0]
    if start > end:
        raise InvalidInput(f"from ({start}) is after to ({end})", field="from")
    return start, end


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def usage_report(
    session: Session, workspace_id: int | None, start: date, end: date, group_by: GroupBy
) -> UsageReport:
    """Sums over the succeeded jobs accepted on UTC days start..end (inclusive); None = all workspaces."""
    where = [
        Generation.status == JobStatus.succeeded,
        col(Generation.created_at) >= _midnight(start),
        col(Generation.created_at) < _midnight(end + timedelta(days=1)),
    ]
    if workspace_id is not None:
        where.append(Generation.workspace_id == workspace_id)
    jobs = session.exec(select(Generation).where(*where).order_by(col(Generation.created_at))).all()
    key_of: Callable[[Generation], str | int | None] = {
        "day": lambda job: job.created_at.date().isoformat(),
        "model": lambda job: job.model,
        "key": lambda job: job.api_key_id,
    }[group_by]
    report = UsageReport(start, end, group_by)
    groups: dict[str | int | None, UsageRow] = {}
    for job in jobs:
        group = key_of(job)
        row = groups.get(group)
        if row is None:
            row = groups[group] = UsageRow(group=group)
        row.add(job)
        report.total.add(job)
    if group_by == "key":
        ids = [g for g in groups if isinstance(g, int)]
        names = dict(session.exec(select(ApiKey.id, ApiKey.name).where(col(ApiKey.id).in_(ids))).all())
        for group, row in groups.items():
            row.key_name = names.get(group) if isinstance(group, int) else None
    report.rows = sorted(groups.values(), key=lambda r: (r.group is None, str(r.group)))
    if group_by == "key":
        report.rows.sort(key=lambda r: (r.group is None, r.group if isinstance(r.group, int) else 0))
    return report


def report_to_api(report: UsageReport) -> dict[str, Any]:
    total = report.total.as_dict(report.group_by)
    for name in ("day", "model", "key_id", "key_name"):
        total.pop(name, None)
    return {
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "group_by": report.group_by,
        "rows": [row.as_dict(report.group_by) for row in report.rows],
        "total": total,
    }


def format_table(report: UsageReport) -> list[str]:
    """The report as fixed-width text lines, for `manage.py usage`."""
    label = {"day": "day", "model": "model", "key": "key"}[report.group_by]
    header = (
        f"{label:<28} {'gens':>6} {'images':>6} {'input':>10} {'output':>10} {'text':>10} "
        f"{'image':>10} {'cost_usd':>12}"
    )

    def line(name: str, row: UsageRow) -> str:
        return (
            f"{name[:28]:<28} {row.generations:>6} {row.images:>6} {row.input_tokens:>10} "
            f"{row.output_tokens:>10} {row.text_tokens:>10} {row.image_tokens:>10} "
            f"{row.estimated_cost_usd:>12.6f}"
        )

    lines = [header]
    for row in report.rows:
        if report.group_by == "key":
            name = f"{row.group} ({row.key_name})" if row.key_name else str(row.group)
        else:
            name = str(row.group)
        lines.append(line(name, row))
    lines.append(line("total", report.total))
    return lines
