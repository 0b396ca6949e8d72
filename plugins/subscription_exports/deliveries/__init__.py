"""The deliveries page: every destination of an export DAG against every day (docs/deliveries.md).

* ``matrix``: the destinations x days matrix from plain rows of the metadata database (no Airflow import);
* ``store``: the bounded queries that read those rows (dag_run, task_instance, xcom), and the
  destinations in effect (the Variable or the shipped file, as a run reads them);
* ``page``: the HTML of the page (server-rendered; forms and links work in the UI's sandboxed iframe);
* ``app``: the FastAPI app the plugin mounts at ``/deliveries`` inside Airflow's api-server, every route
  behind Airflow's auth manager; re-exports go through Airflow's own REST API as the signed-in user;
* ``cli``: ``python -m subscription_exports deliveries``, the same matrix for terminals and scripts.

Nothing of the export path imports this subpackage: an export task never loads FastAPI.
"""
