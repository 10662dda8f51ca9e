# Storyloom's image for hosts with Docker (issue 13): one image, two roles, chosen by the command.
#   API:    python -m uvicorn --app-dir /app api_server:app --host 0.0.0.0 --port 8000 --no-access-log
#   worker: python /app/manage.py worker --concurrency 4
#   once:   python /app/manage.py migrate
# compose.yaml runs the same processes `make cluster` runs on one machine (tests/cluster/test_compose.py
# checks that the commands match). Not built in CI: Docker is not available there.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DATA_DIR=/data

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN useradd --system --uid 10001 --home-dir /data storyloom \
    && mkdir -p /data && chown storyloom /data
USER storyloom
VOLUME ["/data"]
EXPOSE 8000

CMD ["python", "-m", "uvicorn", "--app-dir", "/app", "api_server:app", "--host", "0.0.0.0", "--port", "8000", "--no-access-log"]
