"""The Open Inference Protocol v2 over gRPC (`inference.GRPCInferenceService`), in the HTTP service's process.

The app's lifespan starts it on GRPC_PORT, on the same event loop as the HTTP routes, so
it shares the registry, the micro-batcher and the data plane: a gRPC ModelInfer and a
REST /v2 infer of the same images get the same answer from the same forward passes.

Requests arrive as bytes and are parsed here rather than by grpcio, so a malformed
message is INVALID_ARGUMENT with a reason instead of grpcio's INTERNAL; domain errors map
to status codes through their HTTP status (one table, `app.errors`). The standard
`grpc.health.v1` service follows the data plane's readiness, for Kubernetes gRPC probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from app import __version__
from app.config import Settings
from app.dataplane import PREDICTION_IDS, DataPlane, parse_version
from app.errors import DOMAIN_ERRORS, status_for
from app.protocols import inference_pb2 as pb
from app.protocols import open_inference as oip
from app.protocols import open_inference_grpc as grpc_protocol

SERVICE = "inference.GRPCInferenceService"
HEALTH_POLL_SECONDS = 0.5
# HTTP statuses of domain errors (app.errors) as gRPC codes: a client error is never UNKNOWN or INTERNAL.
CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
}
logger = logging.getLogger(__name__)

Method = Callable[[Any], Awaitable[Message]]
Context = grpc.aio.ServicerContext[bytes, Message]


class InferenceServicer:
    """The six calls of the protocol's health, metadata and inference API, answered by the data plane."""

    def __init__(self, dataplane: DataPlane, settings: Settings) -> None:
        self.dataplane = dataplane
        self.settings = settings

    async def server_live(self, _: pb.ServerLiveRequest) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def server_ready(self, _: pb.ServerReadyRequest) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.dataplane.server_ready())

    async def model_ready(self, request: pb.ModelReadyRequest) -> pb.ModelReadyResponse:
        version = parse_version(request.version)
        return pb.ModelReadyResponse(ready=self.dataplane.model_ready(request.name, version))

    async def server_metadata(self, _: pb.ServerMetadataRequest) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name=oip.SERVER_NAME, version=__version__, extensions=oip.EXTENSIONS)

    async def model_metadata(self, request: pb.ModelMetadataRequest) -> pb.ModelMetadataResponse:
        version = parse_version(request.version)
        return grpc_protocol.model_metadata(self.dataplane.model_metadata(request.name, version))

    async def model_infer(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        version = parse_version(request.model_version)
        self.dataplane.resolve(request.model_name, version)  # An unknown model is NOT_FOUND before its tensors.
        images = grpc_protocol.images(request, self.settings.max_infer_batch)
        grpc_protocol.requested_outputs(request)  # Unknown outputs are refused before the forward pass.
        answer = await self.dataplane.infer(images, request.model_name, version, endpoint="grpc")
        values = oip.output_tensors(answer.probabilities, answer.ood_scores, answer.in_distribution)
        response = grpc_protocol.response(request, values, answer.model, answer.version)
        response.parameters[PREDICTION_IDS].string_param = ",".join(answer.prediction_ids)
        return response

    def handler(self) -> grpc.GenericRpcHandler:
        methods: dict[str, tuple[type[Message], Method]] = {
            "ServerLive": (pb.ServerLiveRequest, self.server_live),
            "ServerReady": (pb.ServerReadyRequest, self.server_ready),
            "ModelReady": (pb.ModelReadyRequest, self.model_ready),
            "ServerMetadata": (pb.ServerMetadataRequest, self.server_metadata),
            "ModelMetadata": (pb.ModelMetadataRequest, self.model_metadata),
            "ModelInfer": (pb.ModelInferRequest, self.model_infer),
        }
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                name: grpc.unary_unary_rpc_method_handler(
                    _answering(message_type, method),
                    request_deserializer=None,  # Raw bytes: parsed in _answering, where a failure is the client's.
                    response_serializer=_serialize,
                )
                for name, (message_type, method) in methods.items()
            },
        )


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _answering(message_type: type[Message], method: Method) -> Callable[[bytes, Context], Awaitable[Message]]:
    """A handler that parses the request and turns domain errors into their status codes."""
    name = message_type.DESCRIPTOR.name

    async def handle(raw: bytes, context: Context) -> Message:
        try:
            request = message_type.FromString(raw)
        except DecodeError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not a valid {name} message ({error})")
        try:
            return await method(request)
        except DOMAIN_ERRORS as error:
            await context.abort(CODES[status_for(error)], str(error))
        raise AssertionError("context.abort raises")  # pragma: no cover

    return handle


def server_options(settings: Settings) -> list[tuple[str, Any]]:
    """Message size limits as REST's (MAX_UPLOAD_BYTES) and keepalive that drops dead peers."""
    keepalive_ms = int(settings.grpc_keepalive_seconds * 1000)
    return [
        ("grpc.max_receive_message_length", settings.max_upload_bytes),
        ("grpc.max_send_message_length", settings.max_upload_bytes),
        ("grpc.max_concurrent_streams", settings.grpc_max_concurrent_rpcs),
        ("grpc.keepalive_time_ms", keepalive_ms),  # Ping an idle connection this often...
        ("grpc.keepalive_timeout_ms", int(settings.grpc_keepalive_timeout_seconds * 1000)),  # ...drop it if silent.
        # Clients may ping as often as the server does, even between calls; more often is a GOAWAY.
        ("grpc.http2.min_ping_interval_without_data_ms", keepalive_ms),
        ("grpc.keepalive_permit_without_calls", 1),
    ]


class GRPCServer:
    """The gRPC server's life: start with the app, health following readiness, graceful stop."""

    def __init__(self, dataplane: DataPlane, settings: Settings) -> None:
        self.dataplane = dataplane
        self.settings = settings
        self.health = health.aio.HealthServicer()
        self.server = grpc.aio.server(
            handlers=[InferenceServicer(dataplane, settings).handler()],
            options=server_options(settings),
            maximum_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = 0
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Listen on GRPC_PORT (0 in tests: any free port); returns the port."""
        self.port = self.server.add_insecure_port(f"{self.settings.host}:{self.settings.grpc_port}")
        await self.server.start()
        self._watcher = asyncio.create_task(self._follow_readiness())
        logger.info("gRPC (Open Inference Protocol v2) on port %d", self.port)
        return self.port

    async def stop(self, grace_seconds: float) -> None:
        """Refuse new calls, let those in flight finish for up to `grace_seconds`, then close."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_seconds)

    async def _follow_readiness(self) -> None:
        serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        while True:
            status = serving if self.dataplane.server_ready() else not_serving
            for service in ("", SERVICE):  # "" is the whole server, as probes ask by default.
                await self.health.set(service, status)
            await asyncio.sleep(HEALTH_POLL_SECONDS)
