# The official Airflow image with this project baked in (docs/deploy.md, "Official image / Helm chart"):
# requirements.txt installed with the constraints of that Airflow version (the project's tested lock
# for it, locks/airflow-<version>.txt), then dags/, plugins/ and include/ copied where the image's
# Airflow looks for them. docker-compose.yaml builds it and mounts the working tree's dags/, plugins/
# and include/ over the copies. Another supported Airflow:
#   docker build --build-arg AIRFLOW_VERSION=3.1.8 --build-arg PYTHON_VERSION=3.12 .
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}
ARG AIRFLOW_VERSION

COPY --chown=airflow:root requirements.txt /opt/airflow/requirements/requirements.txt
COPY --chown=airflow:root locks/airflow-${AIRFLOW_VERSION}.txt /opt/airflow/requirements/constraints.txt

# Installed as the image's `airflow` user, as the official "extending the image" guide does. Naming the
# image's own Airflow version keeps pip from changing Airflow; tests/test_deploy_system.py runs this
# same command against the tested environment.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
        -r /opt/airflow/requirements/requirements.txt \
        -c /opt/airflow/requirements/constraints.txt

COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root include/ /opt/airflow/include/
