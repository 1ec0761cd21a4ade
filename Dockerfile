# Two images from one file:
#   serve  the service on the OpenVINO runtime alone, no TensorFlow (`api`, Kubernetes, KServe)
#   train  serve + TensorFlow, Keras and the training package (`train`, `train-cluster`)
# docker build --target serve -t cifar10-service:serve .   |   docker build --target train -t cifar10-service:train .
# The gRPC messages, generated from app/protocols/inference.proto with grpcio-tools, which stays out of the images.
FROM python:3.11-slim AS protos
WORKDIR /build
COPY requirements-dev.lock ./
RUN pip install --no-cache-dir --disable-pip-version-check -c requirements-dev.lock grpcio-tools
COPY app/protocols/inference.proto ./app/protocols/
RUN python -m grpc_tools.protoc -I . --python_out=. app/protocols/inference.proto

FROM python:3.11-slim AS serve

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MODELS_DIR=/srv/models \
    MONITORING_DB=sqlite:////srv/data/monitoring.db \
    HOST=0.0.0.0

WORKDIR /srv

# Dependencies first, exactly as the lockfile pins them: editing the code never reinstalls them.
# Of OpenVINO's runtime the service needs the CPU plugin and the IR reader: the GPU and NPU plugins, the
# GPU kernel cache and the frontends that convert other formats (TensorFlow, ONNX, PyTorch...) go (~80 MB).
COPY requirements-serve.lock ./
RUN pip install -r requirements-serve.lock \
    && libs="$(python -c 'import openvino, os; print(os.path.dirname(openvino.__file__))')/libs" \
    && rm "$libs"/libopenvino_intel_gpu_plugin.so "$libs"/libopenvino_intel_npu_plugin.so "$libs"/cache.json \
    && find "$libs" -name 'libopenvino_*_frontend.so*' ! -name 'libopenvino_ir_frontend.so*' -delete \
    && useradd --create-home --uid 1000 app \
    && mkdir -p /srv/models /srv/data && chown app:app /srv/models /srv/data

# The service and the neutral core it shares with training (store format, preprocessing, runtimes).
COPY training/__init__.py ./training/__init__.py
COPY training/core ./training/core
COPY app ./app
COPY --from=protos /build/app/protocols/inference_pb2.py ./app/protocols/

USER app
EXPOSE 8000 8081
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["python", "-m", "app"]

FROM serve AS train

USER root
ENV TF_CPP_MIN_LOG_LEVEL=2
COPY requirements.lock ./
# --force-reinstall of openvino: converting TensorFlow graphs (publishing, quantizing) needs the frontends.
RUN pip install -r requirements.lock && pip install --force-reinstall --no-deps "$(grep '^openvino==' requirements.lock)"
COPY training ./training
USER app
