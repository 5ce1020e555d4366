"""Reports into the incident logic: a report sent to the ingest (``POST /reports``,
:mod:`models.reports`) of warning or critical severity is an alert-like event, so grouping,
routing, escalation and dispatch apply to it as to any alert. (An incident an operator opens by
hand from a call is :mod:`alerts.hand_opened`.)

    alert = report_alert(report)      # an Alert with rule "report.<kind>", or None (info)
    is_report_rule("report.noise")    # True

The alert keeps the report's district, kind, severity and time (``window_start`` =
``window_end`` = ``ts``), ``value`` 1 (one report), ``stat`` ``report`` and a message naming
the reporter and the report's text; its id is ``report-<report id>``, so a report read twice
is one alert (a duplicate to the grouper). Grouping lets a report join the active incident of
its district and kind within the grouping window whatever rule opened it (a hotline call about
noise joins the noise sensors' incident), and a sensor alert join an incident a report opened
(:meth:`alerts.incidents.IncidentGrouper.add`).
"""

from __future__ import annotations

from alerts.rules import Alert
from models.reports import Report

__all__ = ["REPORT_RULE_PREFIX", "is_report_rule", "report_alert"]

REPORT_RULE_PREFIX = "report."


def is_report_rule(rule: str) -> bool:
    """Whether ``rule`` is the rule of a report's alert."""
    return rule.startswith(REPORT_RULE_PREFIX)


def report_alert(report: Report) -> Alert | None:
    """The alert a report raises (None for an ``info`` report: kept and shown, no incident)."""
    if report.severity == "info":
        return None
    text = report.text if len(report.text) <= 200 else report.text[:199] + "…"
    message = f"{report.kind} reported by {report.reporter} ({report.source}): {text}"
    return Alert(f"report-{report.id}", f"{REPORT_RULE_PREFIX}{report.kind}", report.district,
                 report.kind, report.severity, 1.0, 0.0, "above", "report", "", report.ts,
                 report.ts, report.ts, message)
