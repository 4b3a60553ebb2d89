"""Service and bucket actions: ListBuckets, Create/Delete/HeadBucket, bucket settings,
and the three listings (ListObjects v1 and v2, ListObjectVersions)."""

from __future__ import annotations

import base64
import binascii
import re

from catalog.records import ListPage
from gateway.objects import ObjectState, ObjectView
from protocols.s3 import xmlio
from protocols.s3.base import ActionBase
from protocols.s3.errors import (
    GenericError,
    InvalidArgument,
    InvalidLocationConstraint,
    MalformedXML,
)
from protocols.s3.errors import NotImplemented as S3NotImplemented
from protocols.s3.headers import check_canned_acl
from protocols.s3.request import S3Request, S3Response
from protocols.s3.router import BUCKET_CONFIG, bucket_config_resource

_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\Z")
_TOKEN_PREFIX = "1"


def encode_token(marker: str) -> str:
    """An opaque ListObjectsV2 continuation token for ``marker``."""
    raw = (_TOKEN_PREFIX + marker).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_token(token: str) -> str:
    """The marker of a continuation token; ``InvalidArgument`` if it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii") + b"==").decode("utf-8")
    except (binascii.Error, ValueError, UnicodeError):
        text = ""
    if not text.startswith(_TOKEN_PREFIX) or len(text) < 2:
        raise InvalidArgument(
            "The continuation token provided is incorrect", ArgumentName="continuation-token"
        )
    return text[len(_TOKEN_PREFIX) :]


class BucketActions(ActionBase):
    """Handlers of the service and bucket level."""

    # -- service ---------------------------------------------------------------------------
    def list_buckets(self, req: S3Request) -> S3Response:
        buckets = self.objects.list_buckets(self.who(req), req.org)
        prefix = req.param("prefix")
        if prefix:
            buckets = [b for b in buckets if b.name.startswith(prefix)]
        infos = [xmlio.BucketInfo(b.name, b.created_at, b.region) for b in buckets]
        return S3Response.xml(xmlio.list_all_my_buckets(self.owner(req), infos, prefix=prefix))

    # -- buckets ---------------------------------------------------------------------------
    def create_bucket(self, req: S3Request) -> S3Response:
        check_canned_acl(req.headers)
        if (req.header("x-amz-bucket-object-lock-enabled") or "").lower() == "true":
            raise S3NotImplemented("Object Lock is not supported.")
        location = xmlio.parse_create_bucket_configuration(self.small_body(req, 64 << 10))
        if location is not None and not _REGION.match(location):
            raise InvalidLocationConstraint(LocationConstraint=location[:64])
        self.objects.create_bucket(self.who(req), req.org, self.bucket(req), region=location)
        resp = S3Response(200)
        resp.add("Location", "/" + self.bucket(req))
        return resp

    def delete_bucket(self, req: S3Request) -> S3Response:
        who, bucket = self.who(req), self.bucket(req)
        # Uploads never completed do not keep a bucket alive (their parts are deleted).
        self.objects.abort_bucket_uploads(who, req.org, bucket)
        self.objects.delete_bucket(who, req.org, bucket)
        return S3Response(204)

    def head_bucket(self, req: S3Request) -> S3Response:
        found = self.objects.head_bucket(self.who(req), req.org, self.bucket(req))
        resp = S3Response(200)
        resp.add("x-amz-bucket-region", found.region)
        resp.add("x-amz-access-point-alias", "false")
        return resp

    def get_bucket_location(self, req: S3Request) -> S3Response:
        found = self.objects.head_bucket(self.who(req), req.org, self.bucket(req))
        return S3Response.xml(xmlio.location_constraint(found.region))

    def get_bucket_versioning(self, req: S3Request) -> S3Response:
        self.objects.head_bucket(self.who(req), req.org, self.bucket(req))
        return S3Response.xml(xmlio.versioning_configuration(None))

    def put_bucket_versioning(self, req: S3Request) -> S3Response:
        self.objects.head_bucket(self.who(req), req.org, self.bucket(req))
        doc = xmlio.parse_xml(self.small_body(req), root="VersioningConfiguration")
        status = doc.one("Status")
        value = status.text.strip() if status is not None else ""
        if value == "Enabled":
            raise S3NotImplemented("Versioning is not supported; buckets are unversioned.")
        if value not in ("", "Suspended"):
            raise MalformedXML()
        return S3Response(200)

    def get_bucket_acl(self, req: S3Request) -> S3Response:
        self.objects.head_bucket(self.who(req), req.org, self.bucket(req))
        return S3Response.xml(xmlio.access_control_policy(self.owner(req)))

    def put_bucket_acl(self, req: S3Request) -> S3Response:
        self.objects.head_bucket(self.who(req), req.org, self.bucket(req))
        check_canned_acl(req.headers)
        self.small_body(req)
        return S3Response(200)

    def get_bucket_config(self, req: S3Request) -> S3Response:
        self.objects.head_bucket(self.who(req), req.org, self.bucket(req))
        name = bucket_config_resource(req)
        assert name is not None
        code, status, message = BUCKET_CONFIG[name]
        if status == 200:
            return S3Response.xml(_empty_config(name))
        raise GenericError(code, status, message, BucketName=self.bucket(req))

    def put_bucket_config(self, req: S3Request) -> S3Response:
        self.objects.head_bucket(self.who(req), req.org, self.bucket(req))
        name = bucket_config_resource(req)
        raise S3NotImplemented(f"Bucket {name} configuration is not supported.")

    def delete_bucket_config(self, req: S3Request) -> S3Response:
        self.objects.head_bucket(self.who(req), req.org, self.bucket(req))
        return S3Response(204)

    # -- listings --------------------------------------------------------------------------
    def _page(
        self, req: S3Request, *, start_after: str | None, max_keys: int
    ) -> tuple[ListPage, list[ObjectView]]:
        page = self.objects.list_objects(
            self.who(req),
            req.org,
            self.bucket(req),
            prefix=req.param("prefix") or "",
            delimiter=req.param("delimiter") or None,
            start_after=start_after or None,
            max_keys=max_keys,
        )
        return page, self.objects.views(list(page.objects))

    def _contents(
        self, req: S3Request, views: list[ObjectView], *, owner: bool, restore: bool
    ) -> list[xmlio.ObjectInfo]:
        who = self.owner(req) if owner else None
        infos = []
        for view in views:
            record = view.record
            status: tuple[bool, object] | None = None
            if restore and view.state == ObjectState.RESTORING:
                status = (True, None)
            elif restore and view.state == ObjectState.RESTORED:
                status = (False, view.restore_expiry)
            infos.append(
                xmlio.ObjectInfo(
                    key=record.key,
                    last_modified=record.modified_at,
                    etag=record.etag,
                    size=record.size,
                    storage_class=view.storage_class,
                    owner=who,
                    restore_status=status,  # type: ignore[arg-type]
                )
            )
        return infos

    @staticmethod
    def _max_keys(req: S3Request) -> tuple[int, int]:
        """``(echoed MaxKeys, keys to list)``: S3 lists at most 1,000 per page."""
        asked = req.int_param("max-keys", 1000)
        return asked, min(asked, 1000)

    def list_objects(self, req: S3Request) -> S3Response:
        url = self.encoding_type(req)
        asked, max_keys = self._max_keys(req)
        marker = req.param("marker") or ""
        page, views = self._page(req, start_after=marker, max_keys=max_keys)
        delimiter = req.param("delimiter") or None
        return S3Response.xml(
            xmlio.list_bucket_v1(
                bucket=self.bucket(req),
                prefix=req.param("prefix") or "",
                marker=marker,
                max_keys=asked,
                is_truncated=page.is_truncated,
                contents=self._contents(req, views, owner=True, restore=False),
                common_prefixes=page.common_prefixes,
                delimiter=delimiter,
                next_marker=page.next_marker if page.is_truncated else None,
                url=url,
            )
        )

    def list_objects_v2(self, req: S3Request) -> S3Response:
        url = self.encoding_type(req)
        asked, max_keys = self._max_keys(req)
        token = req.param("continuation-token")
        start_after = req.param("start-after")
        marker = decode_token(token) if token is not None else start_after
        if token is not None and not token:
            raise InvalidArgument(
                "The continuation token provided is incorrect", ArgumentName="continuation-token"
            )
        attributes = {
            a.strip().lower()
            for a in (req.header("x-amz-optional-object-attributes") or "").split(",")
            if a.strip()
        }
        unknown = attributes - {"restorestatus"}
        if unknown:
            raise InvalidArgument(
                "Invalid attribute name specified.",
                ArgumentName="x-amz-optional-object-attributes",
                ArgumentValue=sorted(unknown)[0][:64],
            )
        page, views = self._page(req, start_after=marker, max_keys=max_keys)
        fetch_owner = (req.param("fetch-owner") or "").lower() == "true"
        return S3Response.xml(
            xmlio.list_bucket_v2(
                bucket=self.bucket(req),
                prefix=req.param("prefix") or "",
                max_keys=asked,
                is_truncated=page.is_truncated,
                contents=self._contents(
                    req, views, owner=fetch_owner, restore="restorestatus" in attributes
                ),
                common_prefixes=page.common_prefixes,
                delimiter=req.param("delimiter") or None,
                continuation_token=token,
                next_continuation_token=(
                    encode_token(page.next_marker)
                    if page.is_truncated and page.next_marker is not None
                    else None
                ),
                start_after=start_after,
                fetch_owner=fetch_owner,
                url=url,
            )
        )

    def list_object_versions(self, req: S3Request) -> S3Response:
        url = self.encoding_type(req)
        asked, max_keys = self._max_keys(req)
        key_marker = req.param("key-marker") or ""
        version_marker = req.param("version-id-marker") or ""
        if version_marker and not key_marker:
            raise InvalidArgument(
                "A version-id marker cannot be specified without a key marker.",
                ArgumentName="version-id-marker",
            )
        if version_marker and version_marker != "null":
            raise InvalidArgument("Invalid version id specified", ArgumentName="version-id-marker")
        page, views = self._page(req, start_after=key_marker, max_keys=max_keys)
        owner = self.owner(req)
        entries: list[xmlio.VersionInfo | xmlio.DeleteMarkerInfo] = [
            xmlio.VersionInfo(
                key=v.record.key,
                version_id="null",
                is_latest=True,
                last_modified=v.record.modified_at,
                etag=v.record.etag,
                size=v.record.size,
                storage_class=v.storage_class,
                owner=owner,
            )
            for v in views
        ]
        truncated = page.is_truncated and page.next_marker is not None
        return S3Response.xml(
            xmlio.list_versions(
                bucket=self.bucket(req),
                prefix=req.param("prefix") or "",
                key_marker=key_marker,
                version_id_marker=version_marker,
                max_keys=asked,
                is_truncated=truncated,
                entries=entries,
                common_prefixes=page.common_prefixes,
                delimiter=req.param("delimiter") or None,
                next_key_marker=page.next_marker if truncated else None,
                next_version_id_marker="null" if truncated else None,
                url=url,
            )
        )


def _empty_config(name: str) -> bytes:
    roots = {
        "logging": "BucketLoggingStatus",
        "notification": "NotificationConfiguration",
        "accelerate": "AccelerateConfiguration",
        "requestPayment": "RequestPaymentConfiguration",
        "intelligent-tiering": "ListBucketIntelligentTieringConfigurationsOutput",
        "inventory": "ListInventoryConfigurationsResult",
        "metrics": "ListMetricsConfigurationsResult",
        "analytics": "ListBucketAnalyticsConfigurationResult",
    }
    if name == "requestPayment":
        return xmlio.render(xmlio.E(roots[name], xmlio.E("Payer", "BucketOwner")))
    return xmlio.render(xmlio.E(roots[name]))
