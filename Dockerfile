# Two images from one file:
#   serve  the service on the OpenVINO runtime alone, no TensorFlow (`api`, Kubernetes, KServe)
#   train  the service's code plus TensorFlow, Keras and the training package (`train`, `train-cluster`)
# docker build --target serve -t cifar10-service:serve .   |   docker build --target train -t cifar10-service:train .

# The gRPC messages, generated from app/protocols/inference.proto with grpcio-tools, which stays out of the images.
FROM python:3.11-slim AS protos
WORKDIR /build
COPY requirements-dev.lock ./
RUN pip install --no-cache-dir --disable-pip-version-check -c requirements-dev.lock grpcio-tools
COPY app/protocols/inference.proto ./app/protocols/
RUN python -m grpc_tools.protoc -I . --python_out=. app/protocols/inference.proto

# What both images share: settings, the unprivileged user, the store and log folders.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MODELS_DIR=/srv/models \
    MONITORING_DB=sqlite:////srv/data/monitoring.db \
    HOST=0.0.0.0
WORKDIR /srv
RUN useradd --create-home --uid 1000 app && mkdir -p /srv/models /srv/data && chown app:app /srv/models /srv/data
EXPOSE 8000 8081

FROM base AS serve
# Dependencies first, exactly as the lockfile pins them: editing the code never reinstalls them. In the same
# layer (a later one could not shrink the image), what serving never uses goes: of OpenVINO the GPU and NPU
# plugins, the GPU kernel cache, the C++ headers and the frontends that convert other formats (TensorFlow,
# ONNX, PyTorch...); every package's own test suite. About 110 MB.
COPY requirements-serve.lock ./
RUN pip install -r requirements-serve.lock \
    && openvino="$(python -c 'import openvino, os; print(os.path.dirname(openvino.__file__))')" \
    && rm "$openvino"/libs/libopenvino_intel_gpu_plugin.so "$openvino"/libs/libopenvino_intel_npu_plugin.so \
        "$openvino"/libs/cache.json \
    && rm -r "$openvino"/include \
    && find "$openvino"/libs -name 'libopenvino_*_frontend.so*' ! -name 'libopenvino_ir_frontend.so*' -delete \
    && find "$(dirname "$openvino")" -type d -name tests -prune -exec rm -r {} +

# The service and the neutral core it shares with training (store format, preprocessing, runtimes).
COPY training/__init__.py ./training/__init__.py
COPY training/core ./training/core
COPY app ./app
COPY --from=protos /build/app/protocols/inference_pb2.py ./app/protocols/
USER app
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["python", "-m", "app"]

FROM base AS train
ENV TF_CPP_MIN_LOG_LEVEL=2
# The whole of OpenVINO here: converting TensorFlow graphs (publishing, quantizing) needs its frontends.
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY app ./app
COPY --from=protos /build/app/protocols/inference_pb2.py ./app/protocols/
COPY training ./training
USER app
CMD ["python", "-m", "app"]
