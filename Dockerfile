# Airflow image used by docker-compose.yaml: the official Airflow image plus this project's
# pinned runtime dependencies (requirements.txt, with requirements.lock as pip constraints).
# DAGs, plugins and include/ are not baked in: docker-compose.yaml mounts them.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:root requirements.txt requirements.lock /opt/airflow/requirements/

# Installed as the image's `airflow` user, as the official "extending the image" guide does.
# requirements.txt pins apache-airflow to the image's version, so pip cannot swap Airflow itself.
RUN pip install --no-cache-dir \
        -r /opt/airflow/requirements/requirements.txt \
        -c /opt/airflow/requirements/requirements.lock
