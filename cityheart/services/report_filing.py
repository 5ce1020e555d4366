"""Reports filed from the dashboard's form (``POST /api/reports``): who may file, and the
signed-in person as the reporter; then the ingest's own validation and Kafka.

    with ReportSender(settings) as sender:
        filing = ReportFiling(sender.intake)
        WebServer(settings, dashboard, static_dir=..., reports=filing, authenticate=...)
        status, document = await filing.file(claims, {"kind": "noise", "text": "...",
                                                      "severity": "warning",
                                                      "lat": 37.79, "lon": -122.39})

Operators and dispatchers file reports (:data:`alerts.access.REPORT_ROLES`, as for "New
incident"); viewers may not (403). ``kind`` is any lower-case identifier, as for ``POST
/reports``: a sensor kind of the city (the form suggests them) joins that kind's incidents, any
other (``pothole``) opens its own. The reporter is the caller's token subject, never a field of
the body (422 if one is sent). The rest (text, severity, district or position, time,
attachments) goes through :class:`connectors.ingest.reports.ReportIntake`, the validation and
producer ``POST /reports`` uses, with source ``dashboard``; the answer, ``202`` and the same
document as ``POST /reports``, comes once Kafka confirmed the report (``503`` if it did not in
``ingest.delivery_timeout_s``). A refused report is ``422`` with its reason and detail.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Protocol

from alerts.access import REPORT_ROLES
from connectors.http_api import error_answer
from connectors.ingest.reports import ReportOutcome
from connectors.tokens import Claims

__all__ = ["SOURCE", "ReportFiling"]

SOURCE = "dashboard"
"""The ``source`` of every report filed through the dashboard."""

Answer = tuple[HTTPStatus, dict[str, Any]]


class _Intake(Protocol):
    async def submit(self, source: str, documents: list[Any]) -> ReportOutcome | None: ...


class ReportFiling:
    """The dashboard's report desk over ``intake`` (a ReportIntake)."""

    def __init__(self, intake: _Intake) -> None:
        self._intake = intake

    async def file(self, claims: Claims, document: Mapping[str, Any]) -> Answer:
        """File ``document`` as ``claims``' report; the status and the answer document."""
        if claims.role not in REPORT_ROLES:
            detail = (f"only {' and '.join(REPORT_ROLES)}s file reports, "
                      f"not role {claims.role!r}")
            return error_answer(HTTPStatus.FORBIDDEN, "forbidden", detail)
        refusal = self._refusal(document)
        if refusal is not None:
            return error_answer(HTTPStatus.UNPROCESSABLE_ENTITY, "invalid", refusal)
        outcome = await self._intake.submit(SOURCE, [{**document, "reporter": claims.sub}])
        if outcome is None:
            return error_answer(HTTPStatus.SERVICE_UNAVAILABLE, "unavailable",
                                "Kafka did not confirm the report in time: file it again")
        if outcome.rejected:
            rejection = outcome.rejected[0]
            status, answer = error_answer(HTTPStatus.UNPROCESSABLE_ENTITY, "invalid",
                                          rejection["detail"])
            return status, {**answer, "reason": rejection["reason"]}
        return HTTPStatus.ACCEPTED, outcome.document()

    def _refusal(self, document: Mapping[str, Any]) -> str | None:
        """Why the dashboard refuses ``document`` before the common validation, or None."""
        if "reporter" in document:
            return ("reporter is the signed-in person (the token's subject), "
                    "not a field of the report")
        return None
