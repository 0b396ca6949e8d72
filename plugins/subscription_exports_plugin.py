"""Registers the package's timetable with Airflow (the scheduler deserializes it from here)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from subscription_exports.timetable import CalendarDayTimetable


class SubscriptionExportsPlugin(AirflowPlugin):
    name = "subscription_exports"
    timetables = [CalendarDayTimetable]
