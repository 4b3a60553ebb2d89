"""The route table of ``/api/v1``: the one list the router serves and the OpenAPI
document describes (see :mod:`admin.api`)."""

from __future__ import annotations

from typing import Any

from admin import handlers_admin as adm
from admin import handlers_auth as auth
from admin import handlers_objects as obj
from admin import handlers_restores as rst
from admin import handlers_uploads as upl
from admin import handlers_usage as use
from admin import openapi
from admin.api import Param, ReplySpec, Route
from admin.schemas import (
    BUCKET_NAME,
    KEY,
    ORG_NAME,
    PREFIX,
    STATE,
    USER_NAME,
    integer,
    string,
)

# -- parameters --------------------------------------------------------------------------------
ORG = Param("org", "path", ORG_NAME, True)
BUCKET = Param("bucket", "path", BUCKET_NAME, True)
OBJECT_KEY = Param("key", "path", KEY, True, "The object key; may contain '/'.")
Q_ORG = Param("org", "query", ORG_NAME, True)
Q_ORG_OPTIONAL = Param("org", "query", ORG_NAME)
Q_BUCKET = Param("bucket", "query", BUCKET_NAME, True)
CURSOR = Param("cursor", "query", string(maxLength=4096), description="From `next_cursor`.")


def limit(default: int, maximum: int = 1000) -> Param:
    return Param(
        "limit", "query", integer(minimum=1, maximum=maximum, default=default),
        description=f"Items per page (default {default}).",
    )


CHECKSUM = Param(
    "X-Checksum-Sha256", "header", string(pattern="^[0-9a-fA-F]{64}$"),
    description="Hex SHA-256 of the body; the upload is refused if it differs (BadDigest).",
)

# -- responses ---------------------------------------------------------------------------------


def ok(schema: str, description: str = "OK", status: int = 200) -> dict[int, ReplySpec]:
    return {status: ReplySpec(description, schema)}


NO_CONTENT = {204: ReplySpec("Done.", None, None)}
BINARY: dict[str, Any] = {"type": "string", "format": "binary"}


ROUTES: list[Route] = [
    Route("GET", "/openapi.json", "getOpenApi", openapi.serve_document,
          "This document (OpenAPI 3.1)", "meta",
          {200: ReplySpec("The OpenAPI document.", {"type": "object"})}, auth=False),
    # -- auth --------------------------------------------------------------------------------
    Route("POST", "/auth/token", "createToken", auth.create_token,
          "Log in: a bearer token for a user name and password", "auth",
          ok("Token", "The token.", 201), body="TokenRequest", auth=False,
          description="401 for a wrong user name or password; 429 with Retry-After while "
          "failed logins are throttled."),
    Route("DELETE", "/auth/token", "deleteToken", auth.delete_token,
          "Log out: revoke the bearer token of this request", "auth", NO_CONTENT),
    Route("GET", "/me", "getMe", auth.me, "Who am I: orgs, roles and rights", "auth", ok("Me")),
    # -- objects -----------------------------------------------------------------------------
    Route("GET", "/objects", "listObjects", obj.list_objects,
          "List and search a bucket (GetDirContentlist)", "objects", ok("ObjectList"),
          params=(
              Q_ORG, Q_BUCKET,
              Param("prefix", "query", PREFIX),
              Param("delimiter", "query", string(maxLength=1, enum=["/"]),
                    description="'/' to list one folder level, with sub-folders as prefixes."),
              Param("name", "query", string(minLength=1, maxLength=1024),
                    description="A glob (*, ?, [abc]) on the last path segment, or on the whole "
                    "key if it holds '/'."),
              Param("min_size", "query", integer(minimum=0)),
              Param("max_size", "query", integer(minimum=0)),
              Param("modified_after", "query", string(format="date-time")),
              Param("modified_before", "query", string(format="date-time")),
              Param("state", "query", STATE),
              Param("storage_class", "query", string(minLength=1, maxLength=32)),
              limit(100), CURSOR,
          ),
          description="Answered from the catalog alone, walking it in key order a batch at a "
          "time: a page ends at `limit` matches or after 10,000 rows looked at, so it may hold "
          "fewer matches than `limit`; go on while `next_cursor` is not null."),
    Route("POST", "/objects/copy", "copyObject", obj.copy_object, "Copy an object", "objects",
          ok("ObjectInfo", "The copy.", 201), body="CopyRequest"),
    Route("POST", "/objects/move", "moveObject", obj.move_object,
          "Move (rename) an object or a folder", "objects", ok("MoveResult"), body="MoveRequest"),
    Route("POST", "/objects/storage-mode", "changeStorageMode", obj.storage_mode,
          "Archive now, pin hot or unpin an object or folder (ChangeStorageMode)", "objects",
          ok("StorageModeResult"), body="StorageModeRequest",
          description="`archive` runs the tiering engine's pass for the target now, whatever "
          "its age; `pin`/`unpin` add or remove a keep-hot rule in the bucket's policy. Needs "
          "the archive right."),
    Route("PUT", "/objects/{org}/{bucket}/{key}", "putObject", obj.put_object,
          "Upload one object, streamed (PutFileFolderInStorage)", "objects",
          ok("ObjectInfo", "Stored: region, size, compression and encryption.", 201),
          params=(ORG, BUCKET, OBJECT_KEY, CHECKSUM,
                  Param("storage_class", "query", string(enum=["STANDARD", "DEEP_ARCHIVE"]))),
          stream_body=True),
    Route("GET", "/objects/{org}/{bucket}/{key}", "getObject", obj.get_object,
          "Download an object (Range supported; RetrieveObject)", "objects",
          {200: ReplySpec("The content.", BINARY, "application/octet-stream"),
           206: ReplySpec("A range of the content.", BINARY, "application/octet-stream")},
          params=(ORG, BUCKET, OBJECT_KEY),
          description="An archived object answers 403 InvalidObjectState (restore it first); "
          "a vault object 403 VaultSealed (fetch /sealed/... and decrypt locally)."),
    Route("HEAD", "/objects/{org}/{bucket}/{key}", "headObject", obj.head_object,
          "An object's headers", "objects", {200: ReplySpec("The headers.", None, None)},
          params=(ORG, BUCKET, OBJECT_KEY)),
    Route("DELETE", "/objects/{org}/{bucket}/{key}", "deleteObject", obj.delete_object,
          "Delete an object", "objects", NO_CONTENT, params=(ORG, BUCKET, OBJECT_KEY)),
    Route("GET", "/metadata/{org}/{bucket}/{key}", "getObjectMetadata", obj.object_metadata,
          "An object's state, class, region, compression and encryption", "objects",
          ok("ObjectInfo"), params=(ORG, BUCKET, OBJECT_KEY)),
    Route("GET", "/sealed/{org}/{bucket}/{key}", "getSealedManifest", obj.sealed_manifest,
          "The sealed segments of an object (how vault objects are read)", "objects",
          ok("SealedManifest"), params=(ORG, BUCKET, OBJECT_KEY),
          description="Each segment is an age-encrypted seekable zstd stream; fetch them in "
          "order from their `url` and decrypt with the bucket owner's identity "
          "(`coolstorage client get --identity`)."),
    Route("GET", "/sealed-segments/{org}/{bucket}/{key}", "getSealedSegment", obj.sealed_segment,
          "One sealed segment's bytes", "objects",
          {200: ReplySpec("The sealed segment.", BINARY, "application/octet-stream")},
          params=(ORG, BUCKET, OBJECT_KEY,
                  Param("part", "query", integer(minimum=1, maximum=10000), True))),
    # -- uploads -----------------------------------------------------------------------------
    Route("POST", "/uploads", "createUpload", upl.create_upload,
          "Start a resumable multipart upload", "uploads", ok("Upload", "The session.", 201),
          body="UploadCreate"),
    Route("GET", "/uploads", "listUploads", upl.list_uploads,
          "Upload sessions in progress in a bucket", "uploads", ok("UploadList"),
          params=(Q_ORG, Q_BUCKET, Param("prefix", "query", PREFIX), limit(100), CURSOR)),
    Route("GET", "/uploads/{upload_id}", "getUpload", upl.get_upload,
          "A session and the parts it received", "uploads", ok("Upload"),
          params=(Param("upload_id", "path", string(minLength=1, maxLength=128), True),)),
    Route("PUT", "/uploads/{upload_id}/parts/{part_number}", "uploadPart", upl.upload_part,
          "Send one part (again replaces it)", "uploads", ok("Part"),
          params=(Param("upload_id", "path", string(minLength=1, maxLength=128), True),
                  Param("part_number", "path", integer(minimum=1, maximum=10000), True),
                  CHECKSUM),
          stream_body=True,
          description="Every part but the last is at least 5 MiB."),
    Route("POST", "/uploads/{upload_id}/complete", "completeUpload", upl.complete_upload,
          "Make the parts the object", "uploads", ok("ObjectInfo"),
          params=(Param("upload_id", "path", string(minLength=1, maxLength=128), True),),
          body="UploadComplete", body_required=False),
    Route("DELETE", "/uploads/{upload_id}", "abortUpload", upl.abort_upload,
          "Abort a session", "uploads", NO_CONTENT,
          params=(Param("upload_id", "path", string(minLength=1, maxLength=128), True),)),
    # -- restores ----------------------------------------------------------------------------
    Route("POST", "/restores", "createRestore", rst.create_restore,
          "Quote or start a restore of an object or folder (RetrieveObject)", "restores",
          {200: ReplySpec("The quote (dry run).", "RestoreJob"),
           201: ReplySpec("The restore, started.", "RestoreJob")},
          body="RestoreRequest",
          description="Quoted before anything is spent: `dry_run` answers the quote only. "
          "Refused with 403 RestoreBudgetExceeded beyond the org's monthly restore budget."),
    Route("GET", "/restores", "listRestores", rst.list_restores, "Restores, newest first",
          "restores", ok("RestoreList"), params=(Q_ORG_OPTIONAL, limit(50, 500), CURSOR)),
    Route("GET", "/restores/{restore_id}", "getRestore", rst.get_restore,
          "A restore's status and progress, with a download link when ready", "restores",
          ok("RestoreJob"), params=(Param("restore_id", "path", integer(minimum=1), True),)),
    Route("GET", "/restores/{restore_id}/objects", "getRestoreObjects", rst.restore_objects,
          "A restore's objects, with download links", "restores", ok("RestoreItems"),
          params=(Param("restore_id", "path", integer(minimum=1), True), limit(100), CURSOR)),
    # -- usage -------------------------------------------------------------------------------
    Route("GET", "/usage", "getUsage", use.usage,
          "Storage by class and request counts per hour or day (ReportUsageMetrics)", "usage",
          ok("Usage"),
          params=(
              Q_ORG,
              Param("user", "query", USER_NAME, description="One user's usage (writes)."),
              Param("bucket", "query", BUCKET_NAME),
              Param("granularity", "query", string(enum=["hour", "day"])),
              Param("since", "query", string(format="date-time")),
              Param("until", "query", string(format="date-time")),
          ),
          description="Members who may not manage the org see their own usage. Reads are "
          "counted per org and bucket, not per user."),
    # -- orgs and members --------------------------------------------------------------------
    Route("GET", "/orgs", "listOrgs", adm.list_orgs, "Orgs (all of them for operators)", "admin",
          ok("OrgList")),
    Route("POST", "/orgs", "createOrg", adm.create_org, "Create an org (operators)", "admin",
          ok("Org", "Created.", 201), body="OrgCreate"),
    Route("GET", "/orgs/{org}", "getOrg", adm.get_org, "One org", "admin", ok("Org"),
          params=(ORG,)),
    Route("GET", "/orgs/{org}/members", "listMembers", adm.list_members, "An org's members",
          "admin", ok("MemberList"), params=(ORG,)),
    Route("PUT", "/orgs/{org}/members/{user}", "putMember", adm.put_member,
          "Add a member or change their role", "admin", ok("Member"),
          params=(ORG, Param("user", "path", USER_NAME, True)), body="MemberPut"),
    Route("DELETE", "/orgs/{org}/members/{user}", "deleteMember", adm.delete_member,
          "Remove a member", "admin", NO_CONTENT,
          params=(ORG, Param("user", "path", USER_NAME, True))),
    Route("GET", "/orgs/{org}/grants", "listGrants", adm.list_grants, "An org's grants",
          "admin", ok("GrantList"), params=(ORG, Param("user", "query", USER_NAME))),
    Route("POST", "/orgs/{org}/grants", "addGrant", adm.add_grant,
          "Grant rights to a member (org-wide or in one bucket)", "admin",
          ok("Grant", "The grant now.", 201), params=(ORG,), body="GrantRequest"),
    Route("POST", "/orgs/{org}/grants/revoke", "revokeGrant", adm.revoke_grant,
          "Take granted rights away", "admin", ok("GrantRevoked"), params=(ORG,),
          body="GrantRequest"),
    Route("GET", "/orgs/{org}/quota", "getQuota", adm.get_quota, "Stored bytes and the quota",
          "admin", ok("Quota"), params=(ORG,)),
    Route("PUT", "/orgs/{org}/quota", "putQuota", adm.put_quota, "Set or remove the quota",
          "admin", ok("Quota"), params=(ORG,), body="QuotaPut"),
    Route("GET", "/orgs/{org}/settings", "getOrgSettings", adm.get_settings,
          "Restore on read, restore tier and monthly restore budget", "admin",
          ok("OrgSettings"), params=(ORG,)),
    Route("PATCH", "/orgs/{org}/settings", "patchOrgSettings", adm.patch_settings,
          "Change restore on read, restore tier or the restore budget", "admin",
          ok("OrgSettings"), params=(ORG,), body="OrgSettingsPatch"),
    Route("GET", "/orgs/{org}/policy", "getOrgPolicy", adm.get_policy,
          "The org's tiering and keep-hot rules", "admin", ok("Policy"), params=(ORG,)),
    Route("PUT", "/orgs/{org}/policy", "putOrgPolicy", adm.put_policy,
          "Replace the org's tiering and keep-hot rules", "admin", ok("Policy"), params=(ORG,),
          body="PolicyRules"),
    Route("DELETE", "/orgs/{org}/policy", "deleteOrgPolicy", adm.delete_policy,
          "Remove the org's rules (the config's apply)", "admin", NO_CONTENT, params=(ORG,)),
    # -- buckets -----------------------------------------------------------------------------
    Route("GET", "/orgs/{org}/buckets", "listBuckets", adm.list_buckets, "An org's buckets",
          "buckets", ok("BucketList"), params=(ORG,)),
    Route("POST", "/orgs/{org}/buckets", "createBucket", adm.create_bucket,
          "Create a bucket (a vault bucket with vault_recipient)", "buckets",
          ok("Bucket", "Created.", 201), params=(ORG,), body="BucketCreate"),
    Route("GET", "/orgs/{org}/buckets/{bucket}", "getBucket", adm.get_bucket, "One bucket",
          "buckets", ok("Bucket"), params=(ORG, BUCKET)),
    Route("PATCH", "/orgs/{org}/buckets/{bucket}", "patchBucket", adm.patch_bucket,
          "Set the retention window of deleted and overwritten objects", "buckets",
          ok("Bucket"), params=(ORG, BUCKET), body="BucketPatch"),
    Route("DELETE", "/orgs/{org}/buckets/{bucket}", "deleteBucket", adm.delete_bucket,
          "Delete an empty bucket", "buckets", NO_CONTENT, params=(ORG, BUCKET)),
    Route("GET", "/orgs/{org}/buckets/{bucket}/policy", "getBucketPolicy", adm.get_policy,
          "The bucket's tiering and keep-hot rules", "buckets", ok("Policy"),
          params=(ORG, BUCKET)),
    Route("PUT", "/orgs/{org}/buckets/{bucket}/policy", "putBucketPolicy", adm.put_policy,
          "Replace the bucket's tiering and keep-hot rules", "buckets", ok("Policy"),
          params=(ORG, BUCKET), body="PolicyRules"),
    Route("DELETE", "/orgs/{org}/buckets/{bucket}/policy", "deleteBucketPolicy",
          adm.delete_policy, "Remove the bucket's rules (the org's apply)", "buckets",
          NO_CONTENT, params=(ORG, BUCKET)),
    # -- keys --------------------------------------------------------------------------------
    Route("GET", "/keys", "listAccessKeys", adm.list_keys, "S3 access keys (without secrets)",
          "admin", ok("AccessKeyList"), params=(Param("user", "query", USER_NAME),)),
    Route("POST", "/keys", "createAccessKey", adm.create_key,
          "A new S3 access key (the secret is shown once)", "admin",
          ok("AccessKeySecret", "Created.", 201), body="AccessKeyCreate"),
    Route("DELETE", "/keys/{access_key_id}", "revokeAccessKey", adm.delete_key,
          "Revoke an S3 access key", "admin", NO_CONTENT,
          params=(Param("access_key_id", "path", string(minLength=1, maxLength=128), True),)),
    # -- operators ---------------------------------------------------------------------------
    Route("GET", "/regions", "listRegions", adm.list_regions, "Regions (operators)", "operators",
          ok("RegionList")),
    Route("PUT", "/regions/{code}", "putRegion", adm.put_region,
          "Create or replace a region (operators)", "operators", ok("Region"),
          params=(Param("code", "path", string(minLength=1, maxLength=64), True),),
          body="RegionPut"),
    Route("DELETE", "/regions/{code}", "deleteRegion", adm.delete_region,
          "Remove a region (operators)", "operators", NO_CONTENT,
          params=(Param("code", "path", string(minLength=1, maxLength=64), True),)),
    Route("GET", "/users", "listUsers", adm.list_users, "Users (operators)", "operators",
          ok("UserList")),
    Route("POST", "/users", "createUser", adm.create_user, "Create a local user (operators)",
          "operators", ok("User", "Created.", 201), body="UserCreate"),
    Route("PATCH", "/users/{user}", "patchUser", adm.patch_user,
          "Change a password, disable or enable a user", "operators", ok("User"),
          params=(Param("user", "path", USER_NAME, True),), body="UserPatch"),
    Route("GET", "/audit", "getAuditLog", adm.audit_log,
          "The audit log, newest first (an org's for its admins)", "admin", ok("AuditPage"),
          params=(Q_ORG_OPTIONAL, limit(100, 1000), CURSOR)),
]
