# One image for both jobs: `api` serves the model store, `train` writes new versions into it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    MODELS_DIR=/srv/models \
    HOST=0.0.0.0

WORKDIR /srv

# Dependencies first, exactly as requirements.lock pins them: editing the code never reinstalls TensorFlow.
COPY requirements.lock ./
RUN pip install -r requirements.lock \
    && useradd --create-home --uid 1000 app \
    && mkdir -p /srv/models && chown app:app /srv/models

COPY training ./training
COPY app ./app

USER app
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["python", "-m", "app"]
