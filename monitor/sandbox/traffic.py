"""Realistic SES event-publishing traffic for the demo, tests and benchmarks.

Records follow the SES event publishing format (as in the shared samples); `sns()` wraps one
in an SNS notification as SNS → SQS delivers it without raw message delivery.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ACCOUNT = "111122223333"
DOMAINS = ("example.net", "example.org", "mail.example.com", "inbox.example.net")


def iso(t: float) -> str:
    return (
        datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{int(t * 1000) % 1000:03d}Z"
    )


@dataclass
class TenantProfile:
    """How one tenant's mail behaves: fractions of sent recipients."""

    name: str
    bounce: float = 0.005
    complaint: float = 0.0001
    transient: float = 0.005
    weight: float = 1.0  # share of the traffic
    configuration_set: str | None = None
    tag_tenant: bool = True  # carry a `tenant` message tag (else only the configuration set)


@dataclass
class Mail:
    message_id: str
    time: float
    tenant: TenantProfile
    recipients: list[str] = field(default_factory=list)

    def common(self) -> dict[str, Any]:
        t = self.tenant
        domain = f"{t.name}.example.com"
        source = f"{t.name} <news@{domain}>"
        tags: dict[str, list[str]] = {
            "ses:configuration-set": [t.configuration_set or f"{t.name}-marketing"],
            "ses:from-domain": [domain],
            "ses:source-ip": ["198.51.100.23"],
            "ses:caller-identity": ["reputation-sender-role"],
        }
        if t.tag_tenant:
            tags["tenant"] = [t.name]
        return {
            "timestamp": iso(self.time),
            "source": source,
            "sourceArn": f"arn:aws:ses:us-east-1:{ACCOUNT}:identity/{domain}",
            "sendingAccountId": ACCOUNT,
            "messageId": self.message_id,
            "destination": list(self.recipients),
            "headersTruncated": False,
            "commonHeaders": {"from": [source], "to": list(self.recipients), "subject": "News"},
            "tags": tags,
        }


class Traffic:
    """Generates sends and their outcomes for a set of tenant profiles."""

    def __init__(self, tenants: list[TenantProfile], *, seed: int = 7) -> None:
        self.tenants = tenants
        self.rng = random.Random(seed)
        self._weights = [t.weight for t in tenants]

    def mail(self, now: float, tenant: TenantProfile | None = None) -> Mail:
        t = tenant or self.rng.choices(self.tenants, self._weights)[0]
        n = self.rng.choice((1, 1, 1, 2, 3))
        rcpts = [f"user{self.rng.randrange(10**6)}@{self.rng.choice(DOMAINS)}" for _ in range(n)]
        mid = f"0100{uuid.UUID(int=self.rng.getrandbits(128)).hex}-000000"
        return Mail(mid, now, t, rcpts)

    def records(self, mail: Mail, now: float) -> list[dict[str, Any]]:
        """The Send record and one outcome record per recipient."""
        t, rng = mail.tenant, self.rng
        out: list[dict[str, Any]] = [{"eventType": "Send", "send": {}, "mail": mail.common()}]
        for r in mail.recipients:
            x = rng.random()
            when = iso(now)
            if x < t.bounce:
                out.append(_bounce(mail, r, "Permanent", "General", when))
            elif x < t.bounce + t.transient:
                out.append(_bounce(mail, r, "Transient", "MailboxFull", when))
            else:
                out.append(
                    {
                        "eventType": "Delivery",
                        "mail": mail.common(),
                        "delivery": {
                            "timestamp": when,
                            "processingTimeMillis": 900,
                            "recipients": [r],
                            "smtpResponse": "250 2.0.0 OK",
                            "reportingMTA": "a8-42.smtp-out.amazonses.com",
                        },
                    }
                )
                if rng.random() < t.complaint * 2:  # complaints come from delivered mail
                    out.append(
                        {
                            "eventType": "Complaint",
                            "mail": mail.common(),
                            "complaint": {
                                "feedbackId": uuid.UUID(int=rng.getrandbits(128)).hex,
                                "complainedRecipients": [{"emailAddress": r}],
                                "timestamp": when,
                                "complaintFeedbackType": "abuse",
                            },
                        }
                    )
        return out


def _bounce(mail: Mail, rcpt: str, kind: str, sub: str, when: str) -> dict[str, Any]:
    common = mail.common()
    common["tags"]["ses:tenant-name"] = [mail.tenant.name]
    return {
        "eventType": "Bounce",
        "mail": common,
        "bounce": {
            "bounceType": kind,
            "bounceSubType": sub,
            "bouncedRecipients": [
                {
                    "emailAddress": rcpt,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": when,
            "feedbackId": uuid.uuid4().hex,
            "reportingMTA": "dsn; a8-42.smtp-out.amazonses.com",
        },
    }


def sns(record: dict[str, Any], *, topic: str = "ses-events", message_id: str | None = None) -> str:
    """Wrap a record as SNS delivers it to SQS without raw message delivery."""
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": message_id or str(uuid.uuid4()),
            "TopicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:{topic}",
            "Message": json.dumps(record, separators=(",", ":")),
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "SignatureVersion": "1",
            "Signature": "ZmFrZQ==",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        },
        separators=(",", ":"),
    )
