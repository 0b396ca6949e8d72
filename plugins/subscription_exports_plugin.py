"""Registers the package's timetable and run-note listener with Airflow (the scheduler deserializes the
timetable from here and calls the listener when it starts a run)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from subscription_exports import notes
from subscription_exports.timetable import CalendarDayTimetable


class SubscriptionExportsPlugin(AirflowPlugin):
    name = "subscription_exports"
    timetables = [CalendarDayTimetable]
    listeners = [notes]
