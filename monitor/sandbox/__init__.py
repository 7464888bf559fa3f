"""Local AWS for `demo`, tests and benchmarks: moto (SQS, DynamoDB, EventBridge) and the SESv2
tenant stand-in, each on 127.0.0.1 and a free port."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from monitor.sandbox.moto_server import MotoServer
from monitor.sandbox.ses_standin import Call, SesStandIn, ThreadedSesStandIn

__all__ = ["Call", "MotoServer", "Sandbox", "SesStandIn", "ThreadedSesStandIn"]


class Sandbox:
    """moto and the SES stand-in on background threads; `env()` points the AWS SDK at them."""

    def __init__(self, *, region: str = "us-east-1", account_id: str = "111122223333") -> None:
        self.region = region
        self.moto = MotoServer()
        self.ses = ThreadedSesStandIn(region=region, account_id=account_id)

    def start(self) -> Self:
        self.moto.start()
        try:
            self.ses.start()
        except BaseException:
            self.moto.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            self.ses.stop()
        finally:
            self.moto.stop()

    def env(self) -> dict[str, str]:
        """Environment for a process (or `os.environ`) whose AWS clients should use the sandbox.

        botocore (1.43, and so aiobotocore 3.x, which reuses its config chain) reads
        `AWS_ENDPOINT_URL_<ID>` where <ID> is the client name's service id upper-cased with '-'
        turned to '_' (`ConfiguredEndpointProvider`): `sesv2` -> SESV2, `events` -> EVENTBRIDGE.
        The per-service variables win over `AWS_ENDPOINT_URL`, which sends any other service to
        moto so nothing leaves the machine.
        """
        return {
            "AWS_ENDPOINT_URL": self.moto.url,
            "AWS_ENDPOINT_URL_SQS": self.moto.url,
            "AWS_ENDPOINT_URL_DYNAMODB": self.moto.url,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": self.moto.url,
            "AWS_ENDPOINT_URL_SESV2": self.ses.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            # No instance-metadata probes for region or credentials on a laptop.
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
