"""The wsgidav ``DAVProvider`` over the ObjectService.

Every request runs as the principal the domain controller authenticated
(``environ["coolstorage.principal"]``); every read and write of data goes through the
ObjectService, which checks that principal's rights. The catalog is used directly only
for what is WebDAV's own, locks and dead properties (its ``dav_*`` queries, after the
write right is checked with :func:`gateway.principals.authorize`), and to read an org's
quota and settings (quota properties, restore-on-read). The namespace is described in
:mod:`protocols.webdav.paths`.

wsgidav asks for the same resources many times per request (a PUT resolves its target
and its parent, a MOVE both ends, the lock checks their ancestors), so resolved
resources are cached for the duration of one request and forgotten after every change.

Speed: a folder listing is read from the catalog in pages of 1,000 (``list_objects``), and
the members are built from those records directly: no per-member lookup. Properties that
need more than the record are fetched once per listing for all its members: the object
states for the Cool Storage properties (one restore query per page), dead properties
(one query per 500 objects) and locks (one query for the whole folder).

Writes that wsgidav would run member by member (DELETE, COPY and MOVE of folders) are
handled natively (``handle_delete``/``handle_copy``/``handle_move``): one listing pass
over the keys under the folder's prefix, each key copied, moved or deleted by the
ObjectService (a move of an object never copies its bytes; a copy within an org shares
them). Per RFC 4918, a COPY or MOVE onto an existing resource (with ``Overwrite: T``,
which wsgidav checks) first deletes that resource; locks stay with the URL they were
taken on and are removed from moved or deleted resources; dead properties follow a moved
object and are copied with a copied one.
"""

from __future__ import annotations

import io
import logging
import shlex
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from wsgidav import util, xml_tools
from wsgidav.dav_error import (
    HTTP_FORBIDDEN,
    HTTP_NOT_FOUND,
    HTTP_UNAUTHORIZED,
    DAVError,
    PRECONDITION_CODE_PropfindFiniteDepth,
    PRECONDITION_CODE_ProtectedProperty,
)
from wsgidav.dav_provider import DAVCollection, DAVNonCollection, DAVProvider, _DAVResource
from wsgidav.util import etree

from catalog.api import Catalog
from catalog.records import Bucket, ObjectRecord, Org
from gateway.config import WebdavConfig
from gateway.errors import (
    AccessDenied,
    CoolStorageError,
    RestoreInProgress,
)
from gateway.objects import ObjectService, ObjectState, ObjectView, RangeSpec
from gateway.principals import Action, Principal, authorize
from protocols.webdav.errors import TextDAVError, dav_error, translated
from protocols.webdav.locks import CatalogLockManager, LockDict
from protocols.webdav.paths import (
    FOLDER_CONTENT_TYPE,
    DavPath,
    dav_path,
    marker_key,
    name_variants,
    usable_name,
)
from protocols.webdav.streams import RangeReader, RequestBody

log = logging.getLogger(__name__)

#: Where the domain controller leaves the authenticated principal.
PRINCIPAL_KEY = "coolstorage.principal"
#: Per-request cache of resolved resources.
CACHE_KEY = "coolstorage.dav_resources"
#: Per-request cache of org records.
ORGS_KEY = "coolstorage.dav_orgs"
#: Set by a COPY or MOVE that created its destination (answered 201, not 204).
CREATED_KEY = "coolstorage.dav_created"

#: The XML namespace of Cool Storage's live properties.
NAMESPACE = "urn:coolstorage:dav"
PROP_STORAGE_CLASS = f"{{{NAMESPACE}}}storage-class"
PROP_RESTORE_STATE = f"{{{NAMESPACE}}}restore-state"
PROP_RESTORE_EXPIRY = f"{{{NAMESPACE}}}restore-expiry"
COOL_PROPS = (PROP_STORAGE_CLASS, PROP_RESTORE_STATE, PROP_RESTORE_EXPIRY)

_LOCK_PROPS = ("{DAV:}lockdiscovery", "{DAV:}supportedlock")
#: Longest property name stored (the column holds 1,024 bytes).
_MAX_PROPERTY_NAME = 1024
#: Deep Archive retrieval times by tier (DESIGN.md): what Retry-After says.
RETRY_AFTER_BY_TIER = {"Standard": 12 * 3600, "Bulk": 48 * 3600}
DEFAULT_TIER = "Standard"
_PAGE = 1000


def principal_of(environ: dict[str, Any]) -> Principal:
    """The request's authenticated principal (a 401 if there is none)."""
    principal = environ.get(PRINCIPAL_KEY)
    if not isinstance(principal, Principal):
        raise DAVError(HTTP_UNAUTHORIZED)
    return principal


def _timestamp(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _http_date(value: datetime) -> str:
    return util.get_rfc1123_time(value.astimezone(UTC).timestamp())


class CoolStorageProvider(DAVProvider):
    """The Cool Storage namespace as a wsgidav provider (see the module docstring)."""

    lock_manager: CatalogLockManager | None

    def __init__(self, objects: ObjectService, catalog: Catalog, settings: WebdavConfig) -> None:
        super().__init__()
        self.objects = objects
        self.catalog = catalog
        self.settings = settings
        self.verbose = 1

    def __repr__(self) -> str:
        return "CoolStorageProvider"

    def is_readonly(self) -> bool:
        return False

    # -- resolution ----------------------------------------------------------------------
    def get_resource_inst(self, path: str, environ: dict[str, Any]) -> _DAVResource | None:
        cache: dict[str, _DAVResource | None] = environ.setdefault(CACHE_KEY, {})
        if path in cache:
            return cache[path]
        resource = self._resolve(path, environ)
        cache[path] = resource
        return resource

    def changed(self, environ: dict[str, Any], *, created: bool | None = None) -> None:
        """Forget the request's resolved resources after a change."""
        environ.pop(CACHE_KEY, None)
        environ.pop(ORGS_KEY, None)
        if created is not None:
            environ[CREATED_KEY] = created

    def _resolve(self, path: str, environ: dict[str, Any]) -> _DAVResource | None:
        where = DavPath.parse(path)
        principal = principal_of(environ)
        if where.org is None:
            return RootCollection(self, environ)
        if where.bucket is None:
            if where.org not in self.objects.list_orgs(principal):
                return None
            return OrgCollection(self, environ, where.org)
        try:
            with translated():
                bucket = self.objects.head_bucket(principal, where.org, where.bucket)
        except DAVError as error:
            if error.value in (HTTP_NOT_FOUND, HTTP_FORBIDDEN):
                return None
            raise
        if not where.key:
            return Folder(self, environ, where.org, bucket, "")
        slash = path.endswith("/")
        for key in name_variants(where.key):
            found = self._find(environ, principal, where.org, bucket, key, slash)
            if found is not None:
                return found
        return None

    def _find(
        self,
        environ: dict[str, Any],
        principal: Principal,
        org: str,
        bucket: Bucket,
        key: str,
        slash: bool,
    ) -> _DAVResource | None:
        """The file or folder at ``key``. With a trailing slash the folder is tried first:
        where S3 holds both a key "x" and keys under "x/", "x" names the file and "x/"
        the folder, and neither hides the other."""
        lookups = (self._folder, self._file) if slash else (self._file, self._folder)
        for lookup in lookups:
            try:
                found = lookup(environ, principal, org, bucket, key)
            except DAVError as error:
                if error.value == 400:  # a key S3 could not hold either (too long)
                    return None
                raise
            if found is not None:
                return found
        return None

    def _file(
        self, environ: dict[str, Any], principal: Principal, org: str, bucket: Bucket, key: str
    ) -> FileResource | None:
        try:
            with translated():
                view = self.objects.head_object(principal, org, bucket.name, key)
        except DAVError as error:
            if error.value == HTTP_NOT_FOUND:
                return None
            raise
        return FileResource(self, environ, org, bucket, key, view.record, view=view)

    def _folder(
        self, environ: dict[str, Any], principal: Principal, org: str, bucket: Bucket, key: str
    ) -> Folder | None:
        prefix = key + "/"
        with translated():
            page = self.objects.list_objects(principal, org, bucket.name, prefix=prefix, max_keys=1)
        if not page.objects:
            return None
        first = page.objects[0]
        marker = first if first.key == marker_key(prefix, self.settings.folder_marker) else None
        return Folder(self, environ, org, bucket, prefix, marker=marker)

    # -- requests ------------------------------------------------------------------------
    def custom_request_handler(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        default_handler: Callable[..., Any],
    ) -> Any:
        method = environ["REQUEST_METHOD"]
        # RFC 4918 9.1: a PROPFIND without a Depth header means infinity.
        depth = environ.get("HTTP_DEPTH", "infinity").strip().lower()
        if method == "PROPFIND" and depth == "infinity" and not self.settings.allow_depth_infinity:
            raise DAVError(
                HTTP_FORBIDDEN,
                "PROPFIND with Depth: infinity is disabled; use Depth: 0 or 1",
                err_condition=PRECONDITION_CODE_PropfindFiniteDepth,
            )
        if method in ("LOCK", "PROPPATCH"):
            # Neither goes through the ObjectService, which checks rights for everything
            # else: a lock or a dead property is a change to the bucket.
            where = DavPath.parse(environ["PATH_INFO"])
            if where.org is not None and where.bucket is not None:
                with translated():
                    authorize(
                        principal_of(environ),
                        Action.WRITE,
                        self.catalog.get_org(where.org),
                        where.bucket,
                    )
        if method in ("COPY", "MOVE"):
            plain_start = start_response

            def start_response(
                status: str, headers: list[tuple[str, str]], exc_info: Any = None
            ) -> Any:
                # wsgidav answers 204 for every natively handled COPY/MOVE.
                if status.startswith("204") and environ.get(CREATED_KEY):
                    status = "201 Created"
                return plain_start(status, headers, exc_info)

        return default_handler(environ, start_response)

    # -- helpers shared by the resources -------------------------------------------------
    def org_record(self, org: str, environ: dict[str, Any]) -> Org:
        """The org's record (quota, settings), read once per request; the caller has
        resolved a resource in it, so the principal may see it."""
        orgs: dict[str, Org] = environ.setdefault(ORGS_KEY, {})
        record = orgs.get(org)
        if record is None:
            record = self.catalog.get_org(org)
            if record is None:
                raise TextDAVError(404, f"no such org: {org}")
            orgs[org] = record
        return record

    def lock_check(self, resource: _DAVResource, depth: str) -> None:
        """423 unless the request may change ``resource`` (and with depth infinity,
        everything below it) with respect to locks."""
        if self.lock_manager is None:
            return
        environ = resource.environ
        self.lock_manager.check_write_permission(
            url=resource.get_ref_url(),
            depth=depth,
            token_list=environ.get("wsgidav.ifLockTokenList", []),
            principal=environ.get("wsgidav.user_name", ""),
        )

    def drop_locks(self, resource: _DAVResource, *, recursive: bool) -> None:
        """Remove the locks of a resource that was deleted or moved away."""
        if self.lock_manager is not None:
            self.lock_manager.remove_all_locks_from_url(resource.get_ref_url(), recursive=recursive)

    def locks_of(self, ref_url: str) -> list[LockDict]:
        """Direct locks of one resource."""
        if self.lock_manager is None:
            return []
        locks: list[LockDict] = self.lock_manager.get_url_lock_list(ref_url)
        return locks

    def put_marker(
        self, environ: dict[str, Any], org: str, bucket: str, prefix: str
    ) -> ObjectRecord:
        """Create the folder marker of ``prefix`` (an empty folder persists)."""
        with translated():
            return self.objects.put_object(
                principal_of(environ),
                org,
                bucket,
                marker_key(prefix, self.settings.folder_marker),
                io.BytesIO(b""),
                size=0,
                content_type=FOLDER_CONTENT_TYPE,
            )

    def walk(
        self, environ: dict[str, Any], org: str, bucket: str, prefix: str
    ) -> Iterator[list[ObjectRecord]]:
        """Every object under ``prefix``, a page at a time (the caller may delete what it
        was given: the walk continues after the last key of each page)."""
        principal = principal_of(environ)
        after: str | None = None
        while True:
            with translated():
                page = self.objects.list_objects(
                    principal, org, bucket, prefix=prefix, start_after=after, max_keys=_PAGE
                )
            if page.objects:
                yield page.objects
                after = page.objects[-1].key
            if not page.is_truncated or not page.objects:
                return

    def delete_tree(
        self, environ: dict[str, Any], org: str, bucket: str, prefix: str
    ) -> list[tuple[str, DAVError]]:
        """Delete every object under ``prefix``; returns the failures."""
        principal = principal_of(environ)
        errors: list[tuple[str, DAVError]] = []
        for records in self.walk(environ, org, bucket, prefix):
            for record in records:
                try:
                    self.objects.delete_object(principal, org, bucket, record.key)
                except CoolStorageError as error:
                    errors.append((_href(dav_path(org, bucket, record.key)), dav_error(error)))
        return errors

    def remove(self, resource: _DAVResource) -> None:
        """Delete a resource that a COPY or MOVE replaces (RFC 4918 9.8.4, 9.9.3)."""
        if isinstance(resource, FileResource | Folder):
            errors = resource.remove()
            if errors:
                raise errors[0][1]
        else:
            raise TextDAVError(403, "this destination cannot be replaced")

    def target(
        self, environ: dict[str, Any], dest_path: str
    ) -> tuple[DavPath, _DAVResource | None]:
        """The parsed destination of a COPY or MOVE and what is there now."""
        return DavPath.parse(dest_path), self.get_resource_inst(dest_path, environ)


def _href(path: str) -> str:
    """A path as wsgidav writes it into ``<D:href>``."""
    return quote(path, safe="/!*'(),$-_|.")


class _Listing:
    """What the members of one folder listing share: their records, and properties loaded
    once for all of them when the first member needs them."""

    def __init__(
        self,
        provider: CoolStorageProvider,
        environ: dict[str, Any],
        folder_url: str,
        bucket: Bucket,
    ) -> None:
        self.provider = provider
        self.environ = environ
        self.folder_url = folder_url
        self.bucket = bucket
        self.records: list[ObjectRecord] = []
        #: Prefixes of the sub-folders listed.
        self.folders: list[str] = []
        self._views: dict[int, ObjectView] | None = None
        self._props: dict[int, dict[str, bytes]] | None = None
        self._folder_props: dict[str, dict[str, bytes]] | None = None
        self._locks: dict[str, list[LockDict]] | None = None

    def view(self, record: ObjectRecord) -> ObjectView:
        if self._views is None:
            views: dict[int, ObjectView] = {}
            with translated():
                for start in range(0, len(self.records), _PAGE):
                    chunk = self.records[start : start + _PAGE]
                    views.update((v.record.id, v) for v in self.provider.objects.views(chunk))
            self._views = views
        return self._views.get(record.id) or self.provider.objects.view(record)

    def props(self, object_id: int) -> dict[str, bytes]:
        if self._props is None:
            with translated():
                self._props = self.provider.catalog.dav_properties_of(r.id for r in self.records)
        return self._props.get(object_id, {})

    def folder_props(self, prefix: str) -> dict[str, bytes]:
        """Dead properties of a listed sub-folder (kept on its marker object)."""
        if self._folder_props is None:
            marker = self.provider.settings.folder_marker
            with translated():
                found = self.provider.catalog.dav_properties_by_keys(
                    self.bucket.id, (marker_key(p, marker) for p in self.folders)
                )
            self._folder_props = found
        return self._folder_props.get(marker_key(prefix, self.provider.settings.folder_marker), {})

    def locks(self, ref_url: str) -> list[LockDict]:
        if self._locks is None:
            found: dict[str, list[LockDict]] = {}
            manager = self.provider.lock_manager
            if manager is not None:
                for lock in manager.storage.get_lock_list(
                    self.folder_url, include_root=False, include_children=True, token_only=False
                ):
                    found.setdefault(lock["root"].rstrip("/"), []).append(lock)
            self._locks = found
        return self._locks.get(ref_url.rstrip("/"), [])


class _Resource:
    """Properties, locks and dead properties shared by every resource class."""

    provider: CoolStorageProvider
    environ: dict[str, Any]
    is_collection: bool
    _listing: _Listing | None = None

    # wsgidav's _DAVResource supplies these.
    get_ref_url: Callable[[], str]
    get_href: Callable[[], str]
    prevent_locking: Callable[[], bool]

    @property
    def principal(self) -> Principal:
        return principal_of(self.environ)

    # -- locks ---------------------------------------------------------------------------
    def _direct_locks(self) -> list[LockDict]:
        if self._listing is not None:
            return self._listing.locks(self.get_ref_url())
        return self.provider.locks_of(self.get_ref_url())

    def _lockdiscovery(self) -> Any:
        element = etree.Element("{DAV:}lockdiscovery")
        now = time.time()
        for lock in self._direct_locks():
            active = etree.SubElement(element, "{DAV:}activelock")
            etree.SubElement(etree.SubElement(active, "{DAV:}locktype"), "{DAV:}" + lock["type"])
            etree.SubElement(etree.SubElement(active, "{DAV:}lockscope"), "{DAV:}" + lock["scope"])
            etree.SubElement(active, "{DAV:}depth").text = lock["depth"]
            if lock["owner"]:
                active.append(xml_tools.string_to_xml(lock["owner"]))
            remaining = max(0, int(float(lock["expire"]) - now))
            etree.SubElement(active, "{DAV:}timeout").text = f"Second-{remaining}"
            token = etree.SubElement(active, "{DAV:}locktoken")
            etree.SubElement(token, "{DAV:}href").text = lock["token"]
            root = etree.SubElement(active, "{DAV:}lockroot")
            etree.SubElement(root, "{DAV:}href").text = self.get_href()
        return element

    # -- dead properties -----------------------------------------------------------------
    _dead: dict[str, bytes] | None = None

    def _dead_properties(self) -> dict[str, bytes]:
        """The resource's dead properties, read once (a PROPFIND asks for names, then
        for each value)."""
        if self._dead is None:
            self._dead = self._load_dead_properties()
        return self._dead

    def _load_dead_properties(self) -> dict[str, bytes]:
        return {}

    def _property_owner(self, *, create: bool) -> int | None:
        """The object id holding this resource's dead properties (None while it has no
        object and ``create`` is False); 403 where properties cannot be kept."""
        raise TextDAVError(403, "properties can be set on files and folders inside a bucket")

    def _cool_property(self, name: str) -> str:
        raise DAVError(HTTP_NOT_FOUND)

    # -- the wsgidav property protocol -----------------------------------------------------
    def get_property_names(self, *, is_allprop: bool) -> list[str]:
        res: Any = self
        names = ["{DAV:}resourcetype"]
        if res.get_creation_date() is not None:
            names.append("{DAV:}creationdate")
        if not self.is_collection:
            names.append("{DAV:}getcontentlength")
        if res.get_content_type() is not None:
            names.append("{DAV:}getcontenttype")
        if res.get_last_modified() is not None:
            names.append("{DAV:}getlastmodified")
        names.append("{DAV:}displayname")
        if res.get_etag() is not None:
            names.append("{DAV:}getetag")
        if self.is_collection:
            if res.get_used_bytes() is not None:
                names.append("{DAV:}quota-used-bytes")
            if res.get_available_bytes() is not None:
                names.append("{DAV:}quota-available-bytes")
        if self.provider.lock_manager is not None and not self.prevent_locking():
            names.extend(_LOCK_PROPS)
        names.extend(self._dead_properties())
        if not is_allprop and not self.is_collection:
            # RFC 4918 lets allprop leave out live properties of other specifications.
            names.extend(COOL_PROPS)
        return names

    def get_property_value(self, name: str) -> Any:
        if name == "{DAV:}lockdiscovery" and self.provider.lock_manager is not None:
            return self._lockdiscovery()
        if name in COOL_PROPS:
            return self._cool_property(name)
        if name == "{DAV:}getetag":
            etag = getattr(self, "get_etag")()  # noqa: B009
            if etag is None:
                raise DAVError(HTTP_NOT_FOUND)
            return f'"{etag}"'  # RFC 4918 15.6: an entity-tag, quotes included
        if name.startswith("{DAV:}"):
            return _DAVResource.get_property_value(self, name)  # type: ignore[arg-type]
        value = self._dead_properties().get(name)
        if value is None:
            raise DAVError(HTTP_NOT_FOUND)
        return xml_tools.string_to_xml(value)

    def set_property_value(self, name: str, value: Any, *, dry_run: bool = False) -> Any:
        if name in _LOCK_PROPS or name.startswith("{DAV:}") or name in COOL_PROPS:
            raise DAVError(HTTP_FORBIDDEN, err_condition=PRECONDITION_CODE_ProtectedProperty)
        if len(name.encode("utf-8")) > _MAX_PROPERTY_NAME:
            raise TextDAVError(403, f"property names are at most {_MAX_PROPERTY_NAME} bytes")
        data = None
        if value is not None:
            data = etree.tostring(value, encoding="unicode").encode("utf-8")
            if len(data) > self.provider.settings.max_property_bytes:
                raise TextDAVError(
                    507,
                    f"a property value is at most {self.provider.settings.max_property_bytes} bytes",
                )
        owner = self._property_owner(create=not dry_run)
        if dry_run or owner is None:
            return None
        with translated():
            self._dead = self.provider.catalog.dav_update_properties(owner, {name: data})
        self.provider.changed(self.environ)
        return None

    def remove_all_properties(self, *, recursive: bool) -> None:
        owner = self._property_owner(create=False)
        if owner is not None:
            with translated():
                self.provider.catalog.dav_delete_properties(owner)
            self._dead = {}


class RootCollection(_Resource, DAVCollection):
    """``/``: the orgs the user belongs to."""

    def __init__(self, provider: CoolStorageProvider, environ: dict[str, Any]) -> None:
        DAVCollection.__init__(self, "/", environ)
        self.provider = provider

    def get_display_name(self) -> str:
        return "Cool Storage"

    def get_member_names(self) -> list[str]:
        return list(self.provider.objects.list_orgs(self.principal))

    def get_member_list(self) -> list[_DAVResource]:
        return [OrgCollection(self.provider, self.environ, org) for org in self.get_member_names()]

    def prevent_locking(self) -> bool:
        return True

    def create_collection(self, name: str) -> None:
        raise TextDAVError(403, "orgs are created by an operator, not through WebDAV")

    def create_empty_resource(self, name: str) -> _DAVResource:
        raise TextDAVError(403, "files are kept in buckets: /ORG/BUCKET/...")

    def handle_delete(self) -> bool:
        raise TextDAVError(403, "the root cannot be deleted")

    def handle_copy(self, dest_path: str, *, depth_infinity: bool) -> bool:
        raise TextDAVError(403, "the root cannot be copied")

    def handle_move(self, dest_path: str) -> bool:
        raise TextDAVError(403, "the root cannot be moved")


class OrgCollection(_Resource, DAVCollection):
    """``/ORG/``: the org's buckets as folders. MKCOL here creates a bucket."""

    def __init__(self, provider: CoolStorageProvider, environ: dict[str, Any], org: str) -> None:
        DAVCollection.__init__(self, f"/{org}", environ)
        self.provider = provider
        self.org = org

    def get_member_names(self) -> list[str]:
        return [b.name for b in self._buckets()]

    def _buckets(self) -> list[Bucket]:
        with translated():
            return self.provider.objects.list_buckets(self.principal, self.org)

    def get_member_list(self) -> list[_DAVResource]:
        return [Folder(self.provider, self.environ, self.org, b, "") for b in self._buckets()]

    def get_used_bytes(self) -> int | None:
        return self.provider.org_record(self.org, self.environ).stored_bytes

    def get_available_bytes(self) -> int | None:
        return _available(self.provider.org_record(self.org, self.environ))

    def prevent_locking(self) -> bool:
        return True

    def create_collection(self, name: str) -> None:
        try:
            with translated():
                self.provider.objects.create_bucket(self.principal, self.org, name)
        except DAVError as error:
            if error.value == 400:
                raise TextDAVError(
                    403,
                    f"folders directly inside an org are buckets: {getattr(error, 'message', '')}",
                ) from None
            raise
        self.provider.changed(self.environ)

    def create_empty_resource(self, name: str) -> _DAVResource:
        raise TextDAVError(403, "files are kept in buckets: create a folder (a bucket) first")

    def handle_delete(self) -> bool:
        raise TextDAVError(403, "an org cannot be deleted through WebDAV")

    def handle_copy(self, dest_path: str, *, depth_infinity: bool) -> bool:
        raise TextDAVError(403, "an org cannot be copied")

    def handle_move(self, dest_path: str) -> bool:
        raise TextDAVError(403, "an org cannot be moved")


def _available(org: Org) -> int | None:
    if org.quota_bytes is None:
        return None
    return max(0, org.quota_bytes - org.stored_bytes)


class Folder(_Resource, DAVCollection):
    """A bucket's top level (``prefix`` "") or a folder inside it (``prefix`` "a/b/")."""

    def __init__(
        self,
        provider: CoolStorageProvider,
        environ: dict[str, Any],
        org: str,
        bucket: Bucket,
        prefix: str,
        *,
        marker: ObjectRecord | None = None,
        listing: _Listing | None = None,
    ) -> None:
        DAVCollection.__init__(self, dav_path(org, bucket.name, prefix).rstrip("/"), environ)
        self.provider = provider
        self.org = org
        self.bucket = bucket
        self.prefix = prefix
        self._marker = marker
        self._marker_known = marker is not None
        self._listing = listing
        self._members: list[_DAVResource] | None = None

    # -- listing -------------------------------------------------------------------------
    def get_member_list(self) -> list[_DAVResource]:
        if self._members is None:
            self._members = self._list()
        return self._members

    def get_member_names(self) -> list[str]:
        return [m.name for m in self.get_member_list()]

    def get_member(self, name: str) -> _DAVResource | None:
        for member in self.get_member_list():
            if member.name == name:
                return member
        return None

    def _list(self) -> list[_DAVResource]:
        provider, prefix = self.provider, self.prefix
        own_marker = marker_key(prefix, provider.settings.folder_marker) if prefix else None
        listing = _Listing(provider, self.environ, self.get_ref_url(), self.bucket)
        entries: list[tuple[str, _DAVResource]] = []
        after: str | None = None
        while True:
            with translated():
                page = provider.objects.list_objects(
                    self.principal,
                    self.org,
                    self.bucket.name,
                    prefix=prefix,
                    delimiter="/",
                    start_after=after,
                    max_keys=_PAGE,
                )
            for common in page.common_prefixes:
                if usable_name(common[len(prefix) : -1]):
                    listing.folders.append(common)
                    folder = Folder(
                        provider, self.environ, self.org, self.bucket, common, listing=listing
                    )
                    entries.append((common, folder))
            for record in page.objects:
                if record.key == own_marker:
                    self._marker, self._marker_known = record, True
                    continue
                if not usable_name(record.key[len(prefix) :]):
                    continue
                listing.records.append(record)
                entry = FileResource(
                    provider,
                    self.environ,
                    self.org,
                    self.bucket,
                    record.key,
                    record,
                    listing=listing,
                )
                entries.append((record.key, entry))
            if not page.is_truncated or page.next_marker is None:
                break
            after = page.next_marker
        if prefix and not self._marker_known:
            self._marker_known = True  # listed and not found: there is none
        entries.sort(key=lambda item: item[0])
        return [resource for _, resource in entries]

    # -- the folder's own properties -----------------------------------------------------
    def marker(self) -> ObjectRecord | None:
        """The folder's marker object, if it has one (the bucket's top has none)."""
        if not self.prefix:
            return None
        if not self._marker_known:
            key = marker_key(self.prefix, self.provider.settings.folder_marker)
            try:
                with translated():
                    self._marker = self.provider.objects.head_object(
                        self.principal, self.org, self.bucket.name, key
                    ).record
            except DAVError as error:
                if error.value != HTTP_NOT_FOUND:
                    raise
                self._marker = None
            self._marker_known = True
        return self._marker

    def get_creation_date(self) -> float | None:
        if not self.prefix:
            return _timestamp(self.bucket.created_at)
        marker = self.marker() if self._marker_known or self._listing is None else None
        return None if marker is None else _timestamp(marker.created_at)

    def get_last_modified(self) -> float | None:
        if not self.prefix:
            return _timestamp(self.bucket.created_at)
        marker = self.marker() if self._marker_known or self._listing is None else None
        return None if marker is None else _timestamp(marker.modified_at)

    def get_used_bytes(self) -> int | None:
        return self.provider.org_record(self.org, self.environ).stored_bytes

    def get_available_bytes(self) -> int | None:
        return _available(self.provider.org_record(self.org, self.environ))

    def _load_dead_properties(self) -> dict[str, bytes]:
        if self._listing is not None and not self._marker_known:
            return self._listing.folder_props(self.prefix)
        marker = self.marker()
        if marker is None:
            return {}
        with translated():
            return self.provider.catalog.dav_properties(marker.id)

    def _property_owner(self, *, create: bool) -> int | None:
        if not self.prefix:
            raise TextDAVError(
                403, "properties can be set on files and folders inside a bucket, not a bucket"
            )
        marker = self.marker()
        if marker is None and create:
            marker = self.provider.put_marker(self.environ, self.org, self.bucket.name, self.prefix)
            self._marker, self._marker_known = marker, True
        return None if marker is None else marker.id

    # -- writes ----------------------------------------------------------------------------
    def create_collection(self, name: str) -> None:
        self.provider.put_marker(self.environ, self.org, self.bucket.name, f"{self.prefix}{name}/")
        self.provider.changed(self.environ)

    def create_empty_resource(self, name: str) -> _DAVResource:
        key = self.prefix + name
        if self.environ["REQUEST_METHOD"] != "LOCK":
            # A PUT: nothing exists until its body has been stored whole.
            return FileResource(self.provider, self.environ, self.org, self.bucket, key, None)
        with translated():
            record = self.provider.objects.put_object(
                self.principal,
                self.org,
                self.bucket.name,
                key,
                io.BytesIO(b""),
                size=0,
                content_type=util.guess_mime_type(key),
            )
        self.provider.changed(self.environ)
        return FileResource(self.provider, self.environ, self.org, self.bucket, key, record)

    def support_recursive_delete(self) -> bool:
        return True

    def remove(self) -> list[tuple[str, DAVError]]:
        """Delete everything below (and the bucket itself at a bucket's top)."""
        provider = self.provider
        errors = provider.delete_tree(self.environ, self.org, self.bucket.name, self.prefix)
        if not self.prefix and not errors:
            try:
                with translated():
                    provider.objects.delete_bucket(self.principal, self.org, self.bucket.name)
            except DAVError as error:
                errors.append((self.get_href(), error))
        provider.drop_locks(self, recursive=True)
        provider.changed(self.environ)
        return errors

    def handle_delete(self) -> bool | list[tuple[str, DAVError]]:
        self.provider.lock_check(self, "infinity")
        errors = self.remove()
        return errors or True

    def delete(self) -> list[tuple[str, DAVError]]:
        return self.remove()

    def _destination(self, dest_path: str) -> tuple[DavPath, str, _DAVResource | None]:
        """Where a COPY or MOVE of this folder goes: the target, its prefix ("" for a
        bucket's top, created if missing) and what is there now (already deleted)."""
        provider = self.provider
        target, existing = provider.target(self.environ, dest_path)
        if target.depth < 2 or target.org is None or target.bucket is None:
            raise TextDAVError(
                403, "a folder can be copied or moved into an org (as a bucket) or a bucket"
            )
        if isinstance(existing, Folder | FileResource) and existing.bucket.id == self.bucket.id:
            existing_prefix = existing.prefix if isinstance(existing, Folder) else existing.key
            if self.prefix.startswith(existing_prefix):
                raise TextDAVError(403, "a folder cannot replace a folder that contains it")
        if existing is not None:
            provider.remove(existing)
        if target.depth == 2:
            try:
                with translated():
                    provider.objects.create_bucket(self.principal, target.org, target.bucket)
            except DAVError as error:
                if error.value != 409:  # it exists (emptied above): fine
                    raise
            return target, "", existing
        return target, target.key + "/", existing

    def handle_copy(
        self, dest_path: str, *, depth_infinity: bool
    ) -> bool | list[tuple[str, DAVError]]:
        provider = self.provider
        target, dst_prefix, existing = self._destination(dest_path)
        assert target.org is not None and target.bucket is not None
        own_marker = (
            marker_key(self.prefix, provider.settings.folder_marker) if self.prefix else None
        )
        errors: list[tuple[str, DAVError]] = []
        if dst_prefix:
            made = provider.put_marker(self.environ, target.org, target.bucket, dst_prefix)
            source_marker = self.marker()
            if source_marker is not None:
                with translated():
                    provider.catalog.dav_copy_properties(source_marker.id, made.id)
        if depth_infinity:
            principal = self.principal
            for records in provider.walk(self.environ, self.org, self.bucket.name, self.prefix):
                with translated():
                    props = provider.catalog.dav_properties_of(r.id for r in records)
                for record in records:
                    rest = record.key[len(self.prefix) :]
                    if (
                        record.key == own_marker
                        or not rest
                        or (not dst_prefix and rest == provider.settings.folder_marker)
                    ):
                        continue
                    try:
                        copied = provider.objects.copy_object(
                            principal,
                            self.org,
                            self.bucket.name,
                            record.key,
                            target.bucket,
                            dst_prefix + rest,
                            dst_org_name=target.org,
                        )
                        if record.id in props:
                            provider.catalog.dav_copy_properties(record.id, copied.id)
                    except CoolStorageError as error:
                        errors.append(
                            (
                                _href(dav_path(self.org, self.bucket.name, record.key)),
                                dav_error(error),
                            )
                        )
        provider.changed(self.environ, created=existing is None)
        return errors or True

    def handle_move(self, dest_path: str) -> bool | list[tuple[str, DAVError]]:
        provider = self.provider
        target, dst_prefix, existing = self._destination(dest_path)
        assert target.org is not None and target.bucket is not None
        principal = self.principal
        settings = provider.settings
        source_marker = self.marker() if self.prefix else None
        errors: list[tuple[str, DAVError]] = []
        if target.org == self.org and self.prefix and dst_prefix:
            with translated():
                provider.objects.move_prefix(
                    principal, self.org, self.bucket.name, self.prefix, target.bucket, dst_prefix
                )
        else:
            # Into a bucket's top, out of one, or to another org: key by key (a marker of
            # the source folder has no place at a bucket's top and is dropped).
            for records in provider.walk(self.environ, self.org, self.bucket.name, self.prefix):
                for record in records:
                    rest = record.key[len(self.prefix) :]
                    try:
                        if not dst_prefix and (not rest or rest == settings.folder_marker):
                            provider.objects.delete_object(
                                principal, self.org, self.bucket.name, record.key
                            )
                        elif target.org == self.org:
                            provider.objects.move_object(
                                principal,
                                self.org,
                                self.bucket.name,
                                record.key,
                                target.bucket,
                                dst_prefix + rest,
                            )
                        else:
                            copied = provider.objects.copy_object(
                                principal,
                                self.org,
                                self.bucket.name,
                                record.key,
                                target.bucket,
                                dst_prefix + rest,
                                dst_org_name=target.org,
                            )
                            provider.catalog.dav_copy_properties(record.id, copied.id)
                            provider.objects.delete_object(
                                principal, self.org, self.bucket.name, record.key
                            )
                    except CoolStorageError as error:
                        errors.append(
                            (
                                _href(dav_path(self.org, self.bucket.name, record.key)),
                                dav_error(error),
                            )
                        )
            if not self.prefix and not errors:
                try:
                    with translated():
                        provider.objects.delete_bucket(principal, self.org, self.bucket.name)
                except DAVError as error:
                    errors.append((self.get_href(), error))
        if dst_prefix and source_marker is None and not errors:
            provider.put_marker(self.environ, target.org, target.bucket, dst_prefix)
        provider.drop_locks(self, recursive=True)
        provider.changed(self.environ, created=existing is None)
        return errors or True


class FileResource(_Resource, DAVNonCollection):
    """An object. ``record`` is None for a PUT's target until its body is stored."""

    def __init__(
        self,
        provider: CoolStorageProvider,
        environ: dict[str, Any],
        org: str,
        bucket: Bucket,
        key: str,
        record: ObjectRecord | None,
        *,
        view: ObjectView | None = None,
        listing: _Listing | None = None,
    ) -> None:
        DAVNonCollection.__init__(self, dav_path(org, bucket.name, key), environ)
        self.provider = provider
        self.org = org
        self.bucket = bucket
        self.key = key
        self.record = record
        self._view = view
        self._listing = listing
        self._content_length: int | None = None

    # -- live properties -----------------------------------------------------------------
    def get_content_length(self) -> int:
        return 0 if self.record is None else self.record.size

    def get_content_type(self) -> str:
        if self.record is None:
            return util.guess_mime_type(self.key)
        return self.record.content_type

    def get_creation_date(self) -> float | None:
        return None if self.record is None else _timestamp(self.record.created_at)

    def get_last_modified(self) -> float | None:
        return None if self.record is None else _timestamp(self.record.modified_at)

    def get_etag(self) -> str | None:
        if self.record is None:
            return None
        return self.record.etag.strip('"') or None

    def support_etag(self) -> bool:
        return self.record is not None

    def support_ranges(self) -> bool:
        return True

    def view(self) -> ObjectView:
        """The object's client-visible state (DESIGN.md, object states)."""
        if self._view is None:
            if self.record is None:
                raise DAVError(HTTP_NOT_FOUND)
            if self._listing is not None:
                self._view = self._listing.view(self.record)
            else:
                with translated():
                    self._view = self.provider.objects.view(self.record)
        return self._view

    def _cool_property(self, name: str) -> str:
        view = self.view()
        if name == PROP_STORAGE_CLASS:
            return view.storage_class
        if name == PROP_RESTORE_STATE:
            return view.state
        if view.restore_expiry is None:
            return ""
        return _http_date(view.restore_expiry)

    def _load_dead_properties(self) -> dict[str, bytes]:
        if self.record is None:
            return {}
        if self._listing is not None:
            return self._listing.props(self.record.id)
        with translated():
            return self.provider.catalog.dav_properties(self.record.id)

    def _property_owner(self, *, create: bool) -> int | None:
        if self.record is None:
            raise DAVError(HTTP_NOT_FOUND)
        return self.record.id

    # -- reads -----------------------------------------------------------------------------
    def finalize_headers(
        self, environ: dict[str, Any], response_headers: list[tuple[str, str]]
    ) -> None:
        """Called by wsgidav's GET/HEAD just before it starts the response: a GET of an
        archived file is answered here, before any 200 is sent."""
        for name, value in response_headers:
            if name.lower() == "content-length":
                self._content_length = int(value)
        if environ["REQUEST_METHOD"] == "GET":
            self._check_readable()

    def _check_readable(self) -> None:
        view = self.view()
        if view.readable:
            return
        org = self.provider.org_record(self.org, self.environ)
        tier = _tier(org)
        retry = [("Retry-After", str(RETRY_AFTER_BY_TIER[tier]))]
        where = f"{self.org}/{self.bucket.name}/{self.key}"
        if view.state == ObjectState.RESTORING:
            raise TextDAVError(
                503, f"{where} is being restored from Deep Archive; try again later", headers=retry
            )
        refusal = ""
        if org.settings.get("restore_on_read") is True:
            try:
                ticket = self.provider.objects.request_restore(
                    self.principal,
                    self.org,
                    self.bucket.name,
                    self.key,
                    days=_restore_days(org, self.provider.settings.restore_days),
                    tier=tier,
                )
            except RestoreInProgress:
                raise TextDAVError(
                    503,
                    f"{where} is being restored from Deep Archive; try again later",
                    headers=retry,
                ) from None
            except AccessDenied as error:
                refusal = f"Reading it cannot restore it for you: {error}.\n"
            except CoolStorageError as error:
                if error.http_status >= 500:
                    raise dav_error(error) from None
                refusal = f"Reading it cannot restore it for you: {error}.\n"
            else:
                log.info("a WebDAV read asked for a restore of %s (%s tier)", where, tier)
                if ticket.status == "available":
                    with translated():
                        self._view = self.provider.objects.head_object(
                            self.principal, self.org, self.bucket.name, self.key
                        )
                        self.record = self._view.record
                    if self._view.readable:
                        return
            if not refusal:
                raise TextDAVError(
                    503,
                    f"{where} is archived in Deep Archive; a restore ({tier} tier) was requested"
                    " by this read. Try again later.",
                    headers=retry,
                )
        raise TextDAVError(
            403,
            f"{where} is archived in Deep Archive; restore it before reading.\n{refusal}"
            f"Restore it with:  coolstorage restore --org {shlex.quote(self.org)}"
            f" {shlex.quote(self.bucket.name + '/' + self.key)}\n"
            f"or with S3 RestoreObject:  aws s3api restore-object --bucket {self.bucket.name}"
            f" --key {shlex.quote(self.key)} --restore-request Days=7  (against the S3 endpoint)",
        )

    def get_content(self) -> RangeReader:
        def open_range(start: int, length: int) -> Iterator[bytes]:
            assert self.record is not None
            whole = start == 0 and length == self.record.size
            with translated():
                opened = self.provider.objects.get_object(
                    self.principal,
                    self.org,
                    self.bucket.name,
                    self.key,
                    byte_range=None if whole else RangeSpec(start, start + length - 1),
                )
            return opened.body

        def length() -> int:
            if self._content_length is not None:
                return self._content_length
            return 0 if self.record is None else self.record.size

        return RangeReader(open_range, length)

    # -- writes ----------------------------------------------------------------------------
    def begin_write(self, *, content_type: str | None = None) -> _Upload:
        return _Upload(self, content_type)

    def end_write(self, *, with_errors: bool) -> None:
        self.provider.changed(self.environ)

    def remove(self) -> list[tuple[str, DAVError]]:
        with translated():
            self.provider.objects.delete_object(
                self.principal, self.org, self.bucket.name, self.key
            )
        self.provider.drop_locks(self, recursive=False)
        self.provider.changed(self.environ)
        return []

    def handle_delete(self) -> bool:
        self.provider.lock_check(self, "0")
        self.remove()
        return True

    def delete(self) -> list[tuple[str, DAVError]]:
        return self.remove()

    def _destination(self, dest_path: str) -> tuple[DavPath, str, _DAVResource | None]:
        provider = self.provider
        target, existing = provider.target(self.environ, dest_path)
        if target.depth < 3 or target.org is None or target.bucket is None:
            raise TextDAVError(403, "files are kept in buckets: copy or move it into one")
        if (
            isinstance(existing, Folder)
            and existing.bucket.id == self.bucket.id
            and self.key.startswith(existing.prefix)
        ):
            raise TextDAVError(403, "a file cannot replace a folder that contains it")
        key = existing.key if isinstance(existing, FileResource) else target.key
        if isinstance(existing, Folder):
            provider.remove(existing)
        return target, key, existing

    def handle_copy(self, dest_path: str, *, depth_infinity: bool) -> bool:
        provider = self.provider
        target, key, existing = self._destination(dest_path)
        assert target.org is not None and target.bucket is not None and self.record is not None
        with translated():
            copied = provider.objects.copy_object(
                self.principal,
                self.org,
                self.bucket.name,
                self.key,
                target.bucket,
                key,
                dst_org_name=target.org,
            )
            provider.catalog.dav_copy_properties(self.record.id, copied.id)
        provider.changed(self.environ, created=existing is None)
        return True

    def handle_move(self, dest_path: str) -> bool:
        provider = self.provider
        target, key, existing = self._destination(dest_path)
        assert target.org is not None and target.bucket is not None and self.record is not None
        principal = self.principal
        with translated():
            if target.org == self.org:
                provider.objects.move_object(
                    principal, self.org, self.bucket.name, self.key, target.bucket, key
                )
            else:
                copied = provider.objects.copy_object(
                    principal,
                    self.org,
                    self.bucket.name,
                    self.key,
                    target.bucket,
                    key,
                    dst_org_name=target.org,
                )
                provider.catalog.dav_copy_properties(self.record.id, copied.id)
                provider.objects.delete_object(principal, self.org, self.bucket.name, self.key)
        provider.drop_locks(self, recursive=False)
        provider.changed(self.environ, created=existing is None)
        return True


def _tier(org: Org) -> str:
    tier = org.settings.get("restore_tier", DEFAULT_TIER)
    # Deep Archive has no Expedited tier; anything unknown falls back to Standard.
    return tier if tier in RETRY_AFTER_BY_TIER else DEFAULT_TIER


def _restore_days(org: Org, default: int) -> int:
    days = org.settings.get("restore_days", default)
    return days if isinstance(days, int) and days > 0 else default


class _Upload:
    """What wsgidav's PUT writes to: the body goes straight from the request stream into
    ``put_object`` (see :mod:`protocols.webdav.streams`)."""

    def __init__(self, resource: FileResource, content_type: str | None) -> None:
        self.resource = resource
        self.content_type = content_type

    def writelines(self, chunks: Any) -> None:
        resource = self.resource
        environ = resource.environ
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # never started: the body is read directly below
        body = RequestBody(environ)
        size = None
        if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            try:
                size = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                raise TextDAVError(400, "Content-Length is not a number") from None
        content_type = self.content_type or ""
        if not content_type or content_type.startswith("application/octet-stream"):
            content_type = util.guess_mime_type(resource.key)
        with translated():
            record = resource.provider.objects.put_object(
                resource.principal,
                resource.org,
                resource.bucket.name,
                resource.key,
                body,
                size=size,
                content_type=content_type,
                modified_at=_client_mtime(environ),
            )
        resource.record = record
        resource._view = None

    def write(self, data: bytes) -> None:
        raise NotImplementedError("the upload reads the request body itself")

    def close(self) -> None:
        """Nothing to flush: the object was committed by ``writelines``."""


def _client_mtime(environ: dict[str, Any]) -> datetime | None:
    """The modification time a client sent as ``X-OC-Mtime`` (seconds since the epoch;
    rclone and ownCloud clients send it), else None (now)."""
    value = environ.get("HTTP_X_OC_MTIME", "").strip()
    if not value:
        return None
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (ValueError, OverflowError, OSError):
        return None
