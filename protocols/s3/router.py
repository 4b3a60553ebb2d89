"""Routing: which S3 action a request is, from its method, address and sub-resource.

As in moto, every action is a handler method named after the S3 action in snake case
(``put_object``, ``list_objects_v2``, ``complete_multipart_upload``...). :func:`resolve`
returns that name; the app looks it up on itself. Sub-resources are the query parameters
S3 routes on (``?uploads``, ``?acl``, ``?restore``...); other parameters (``prefix``,
``max-keys``, ``response-*``) never change the action.
"""

from __future__ import annotations

from protocols.s3.errors import MethodNotAllowed
from protocols.s3.errors import NotImplemented as S3NotImplemented
from protocols.s3.request import S3Request

#: Bucket configuration sub-resources this gateway keeps none of: GET answers S3's
#: "no such configuration" error, PUT is NotImplemented, DELETE succeeds.
BUCKET_CONFIG: dict[str, tuple[str, int, str]] = {
    "policy": ("NoSuchBucketPolicy", 404, "The bucket policy does not exist"),
    "lifecycle": ("NoSuchLifecycleConfiguration", 404, "The lifecycle configuration does not exist"),
    "cors": ("NoSuchCORSConfiguration", 404, "The CORS configuration does not exist"),
    "tagging": ("NoSuchTagSet", 404, "The TagSet does not exist"),
    "website": ("NoSuchWebsiteConfiguration", 404, "The specified bucket does not have a website configuration"),
    "encryption": (
        "ServerSideEncryptionConfigurationNotFoundError",
        404,
        "The server side encryption configuration was not found",
    ),
    "object-lock": (
        "ObjectLockConfigurationNotFoundError",
        404,
        "Object Lock configuration does not exist for this bucket",
    ),
    "publicAccessBlock": (
        "NoSuchPublicAccessBlockConfiguration",
        404,
        "The public access block configuration was not found",
    ),
    "ownershipControls": (
        "OwnershipControlsNotFoundError",
        404,
        "The bucket ownership controls were not found",
    ),
    "replication": (
        "ReplicationConfigurationNotFoundError",
        404,
        "The replication configuration was not found",
    ),
    "logging": ("", 200, ""),
    "notification": ("", 200, ""),
    "accelerate": ("", 200, ""),
    "requestPayment": ("", 200, ""),
    "policyStatus": ("NoSuchBucketPolicy", 404, "The bucket policy does not exist"),
    "intelligent-tiering": ("", 200, ""),
    "inventory": ("", 200, ""),
    "metrics": ("", 200, ""),
    "analytics": ("", 200, ""),
}

_UNSUPPORTED_OBJECT = ("retention", "legal-hold", "torrent", "attributes", "select", "renameObject")


def bucket_config_resource(req: S3Request) -> str | None:
    for name in BUCKET_CONFIG:
        if req.has(name):
            return name
    return None


def resolve(req: S3Request) -> str:
    """The handler name for ``req`` (bucket and key already parsed)."""
    method = req.method
    if req.bucket is None:
        if method in ("GET", "HEAD"):
            return "list_buckets"
        raise MethodNotAllowed(headers={"Allow": "GET"})
    if req.key is None:
        return _bucket_action(req, method)
    return _object_action(req, method)


def _bucket_action(req: S3Request, method: str) -> str:
    config = bucket_config_resource(req)
    if method == "GET":
        for name, action in (
            ("uploads", "list_multipart_uploads"),
            ("versions", "list_object_versions"),
            ("location", "get_bucket_location"),
            ("versioning", "get_bucket_versioning"),
            ("acl", "get_bucket_acl"),
        ):
            if req.has(name):
                return action
        if config is not None:
            return "get_bucket_config"
        if req.param("list-type") == "2":
            return "list_objects_v2"
        return "list_objects"
    if method == "HEAD":
        return "head_bucket"
    if method == "PUT":
        if req.has("acl"):
            return "put_bucket_acl"
        if req.has("versioning"):
            return "put_bucket_versioning"
        if config is not None:
            return "put_bucket_config"
        return "create_bucket"
    if method == "DELETE":
        if config is not None:
            return "delete_bucket_config"
        return "delete_bucket"
    if method == "POST":
        if req.has("delete"):
            return "delete_objects"
        raise S3NotImplemented("POST uploads (browser forms) are not supported.")
    raise MethodNotAllowed(headers={"Allow": "GET, HEAD, PUT, DELETE, POST"})


def _object_action(req: S3Request, method: str) -> str:
    for name in _UNSUPPORTED_OBJECT:
        if req.has(name):
            raise S3NotImplemented(f"The ?{name} sub-resource is not supported.")
    copy = req.header("x-amz-copy-source") is not None
    if method == "GET":
        if req.has("uploadId"):
            return "list_parts"
        if req.has("acl"):
            return "get_object_acl"
        if req.has("tagging"):
            return "get_object_tagging"
        return "get_object"
    if method == "HEAD":
        return "head_object"
    if method == "PUT":
        if req.has("uploadId") or req.has("partNumber"):
            return "upload_part_copy" if copy else "upload_part"
        if req.has("acl"):
            return "put_object_acl"
        if req.has("tagging"):
            return "put_object_tagging"
        return "copy_object" if copy else "put_object"
    if method == "POST":
        if req.has("uploads"):
            return "create_multipart_upload"
        if req.has("uploadId"):
            return "complete_multipart_upload"
        if req.has("restore"):
            return "restore_object"
        raise S3NotImplemented("This POST request is not supported.")
    if method == "DELETE":
        if req.has("uploadId"):
            return "abort_multipart_upload"
        if req.has("tagging"):
            return "delete_object_tagging"
        return "delete_object"
    raise MethodNotAllowed(headers={"Allow": "GET, HEAD, PUT, DELETE, POST"})
