"""API of the sharing capability: parse, authorize, call a service, serialize.

Sensor ingestion and the board are public endpoints (auth=None): sensors authenticate by
signature or integration secret, the board by the zone's public_board setting."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.http import JsonResponse
from ninja import Router, Schema, Status
from pydantic import Field

from pumasi.core.api import idempotent, problem_response, require_scope
from pumasi.core.errors import InvalidInput
from pumasi.core.pagination import paginate
from pumasi.sharing import ingest, ngsi, selectors, services

router = Router(tags=["sharing"])


# --- schemas ------------------------------------------------------------------------------------

class ZoneOut(Schema):
    slug: str
    name: str
    kind: str
    time_zone: str
    address: str
    allow_visitors: bool
    public_board: bool


class ResourceOut(Schema):
    code: str
    name: str
    kind: str
    occupancy: str
    shared: bool
    holder_id: int | None
    map_x: int
    map_y: int

    @staticmethod
    def resolve_shared(obj) -> bool:
        return not obj.is_private


class BookingIn(Schema):
    code: str = Field(min_length=1, max_length=20)
    starts_at: datetime
    ends_at: datetime
    hold: bool = False


class VisitorBookingIn(BookingIn):
    visitor_name: str = Field(min_length=1, max_length=80)
    visitor_phone: str = Field("", max_length=20)
    plate: str = Field("", max_length=20)


class BookingOut(Schema):
    id: int
    zone: str
    code: str
    starts_at: datetime
    ends_at: datetime
    status: str
    fee_amount: int
    currency: str
    hold_expires_at: datetime | None

    @staticmethod
    def resolve_zone(obj) -> str:
        return obj.resource.zone.slug

    @staticmethod
    def resolve_code(obj) -> str:
        return obj.resource.code


class VisitorBookingOut(BookingOut):
    reference: str


class BookingPage(Schema):
    items: list[BookingOut]
    next_cursor: str | None


class DecisionOut(Schema):
    allowed: bool
    fee: int
    currency: str
    audience: str
    reasons: list[str]
    codes: list[str]


class WindowIn(Schema):
    name: str = Field(min_length=1, max_length=80)
    days: list[str] = Field(min_length=1, description="Mon … Sun, Holidays")
    start_time: time
    end_time: time
    audience: str
    fee_per_hour: int = Field(0, ge=0)
    max_stay_minutes: int | None = Field(None, ge=1)
    notice_minutes: int = Field(0, ge=0)
    resource_kind: str = ""


class WindowOut(Schema):
    id: int
    name: str
    days: int
    start_time: time
    end_time: time
    audience: str
    fee_per_hour: int
    max_stay_minutes: int | None
    notice_minutes: int
    resource_kind: str


class SharingIn(Schema):
    shares: bool


class DeviceIn(Schema):
    external_id: str = Field(min_length=1, max_length=64)
    code: str | None = None
    interval_seconds: int = Field(300, ge=10, le=86400)


class UpkeepIn(Schema):
    amount: int = Field(ge=1, le=10**12)
    description: str = Field(min_length=1, max_length=200)
    paid_from: str = Field("fund", description="fund (the zone's upkeep fund) or cash")
    idempotency_key: str = Field("", max_length=100, description="the same key again returns the first entry")


class UpkeepOut(Schema):
    transaction_id: int
    amount: int
    currency: str
    description: str
    paid_from: str
    created_at: datetime


class DeviceCreatedOut(Schema):
    external_id: str
    code: str | None
    secret: str


# --- zones, spaces, policy ------------------------------------------------------------------------

@router.get("/sharing/zones/{slug}", response=ZoneOut, summary="A zone")
def get_zone(request, slug: str):
    return selectors.zone_for(request.user, slug)


@router.get("/sharing/zones/{slug}/resources", response=list[ResourceOut], summary="Spaces of a zone")
def list_resources(request, slug: str):
    return list(selectors.resources(selectors.zone_for(request.user, slug)))


@router.get("/sharing/zones/{slug}/windows", response=list[WindowOut], summary="The zone's sharing rules")
def list_windows(request, slug: str):
    return list(selectors.zone_for(request.user, slug).windows.order_by("pk"))


@router.post("/sharing/zones/{slug}/windows", response={201: WindowOut}, summary="Add a sharing rule (committee)")
def add_window(request, slug: str, payload: WindowIn):
    require_scope(request, "sharing:write")
    zone = selectors.zone_for(request.user, slug)
    return Status(201, services.add_window(actor=request.user, zone=zone, **payload.dict()))


@router.post("/sharing/zones/{slug}/resources/{code}/sharing", response=ResourceOut,
             summary="The holder opts a space out of (or back into) the commons")
def set_sharing(request, slug: str, code: str, payload: SharingIn):
    require_scope(request, "sharing:write")
    zone = selectors.zone_for(request.user, slug)
    return services.set_sharing(actor=request.user, resource=selectors.resource(zone, code), shares=payload.shares)


@router.post("/sharing/zones/{slug}/devices", response={201: DeviceCreatedOut},
             summary="Register a sensor (organiser); the secret is shown once")
def register_device(request, slug: str, payload: DeviceIn):
    require_scope(request, "sharing:write")
    zone = selectors.zone_for(request.user, slug)
    resource = selectors.resource(zone, payload.code) if payload.code else None
    device, secret = services.register_device(actor=request.user, zone=zone, external_id=payload.external_id,
                                              resource=resource, interval_seconds=payload.interval_seconds)
    return Status(201, {"external_id": device.external_id, "code": resource.code if resource else None, "secret": secret})


@router.post("/sharing/zones/{slug}/upkeep-costs", response={201: UpkeepOut},
             summary="Post an upkeep cost of the zone to the ledger as an expense (committee)")
def record_upkeep_cost(request, slug: str, payload: UpkeepIn):
    require_scope(request, "sharing:write")
    zone = selectors.zone_for(request.user, slug)
    entry = services.record_upkeep_cost(actor=request.user, zone=zone, **payload.dict())
    return Status(201, next(row for row in selectors.upkeep_cost_rows(zone) if row["transaction_id"] == entry.pk))


@router.get("/sharing/zones/{slug}/upkeep-costs", response=list[UpkeepOut],
            summary="The zone's upkeep costs, newest first (committee)")
def list_upkeep_costs(request, slug: str):
    zone = selectors.zone_for(request.user, slug, "decide")
    return selectors.upkeep_cost_rows(zone)


@router.get("/sharing/zones/{slug}/value", summary="The zone's social value, computed")
def zone_value(request, slug: str):
    return selectors.social_value(selectors.zone_for(request.user, slug))


# --- the engine, bookings ---------------------------------------------------------------------------

@router.get("/sharing/zones/{slug}/decision", response=DecisionOut, auth=None,
            summary="May I use this space from t1 to t2, and at what price")
def decision(request, slug: str, code: str, starts_at: datetime, ends_at: datetime):
    zone = selectors.public_zone(request.user, slug)
    resource = selectors.resource(zone, code)
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise InvalidInput("Give times with an offset.", field_errors={"starts_at": ["Needs a time zone offset."]})
    if ends_at - starts_at > timedelta(days=31):  # the engine walks every day; a bound keeps it quick
        raise InvalidInput("Ask about at most 31 days.", field_errors={"ends_at": ["At most 31 days after the start."]})
    user = request.user if request.user.is_authenticated else None
    found = selectors.decision_for(user=user, resource=resource, t1=starts_at, t2=ends_at)
    return {"allowed": found.allowed, "fee": found.fee, "currency": zone.community.currency,
            "audience": found.audience, "reasons": found.reasons, "codes": found.codes}


@router.post("/sharing/zones/{slug}/bookings", response={201: BookingOut}, summary="Book a space (member)")
@idempotent
def create_booking(request, slug: str, payload: BookingIn):
    require_scope(request, "sharing:write")
    zone = selectors.zone_for(request.user, slug)
    booking = services.create_booking(actor=request.user, resource=selectors.resource(zone, payload.code),
                                      starts_at=payload.starts_at, ends_at=payload.ends_at, hold=payload.hold)
    return Status(201, booking)


@router.post("/sharing/zones/{slug}/visitor-bookings", response={201: VisitorBookingOut}, auth=None,
             summary="Book a space as a visitor without an account (where the zone allows)")
@idempotent
def create_visitor_booking(request, slug: str, payload: VisitorBookingIn):
    zone = selectors.zone_by_slug(slug)
    if not zone.allow_visitors:
        return problem_response(404, "No such zone.", code="not_found")
    booking = services.create_booking(
        actor=None, resource=selectors.resource(zone, payload.code), starts_at=payload.starts_at,
        ends_at=payload.ends_at, hold=payload.hold, visitor_name=payload.visitor_name,
        visitor_phone=payload.visitor_phone, plate=payload.plate)
    return Status(201, booking)


@router.get("/sharing/bookings", response=BookingPage, summary="My bookings")
def my_bookings(request, cursor: str | None = None, limit: int = 50):
    return paginate(selectors.bookings_of(request.user), cursor=cursor, limit=limit)


_ACTIONS = {
    "cancel": services.cancel_booking, "confirm": services.confirm_booking, "check-in": services.check_in,
    "complete": services.complete_booking,
}


@router.post("/sharing/bookings/{booking_id}/{action}", response={200: BookingOut},
             summary="cancel, confirm, check-in or complete a booking (the booker or the committee)")
def booking_action(request, booking_id: int, action: str):
    if action not in _ACTIONS:
        return problem_response(404, "Not found.", code="not_found")
    require_scope(request, "sharing:write")
    booking = selectors.booking_for(request.user, booking_id)
    return Status(200, _ACTIONS[action](actor=request.user, booking=booking))


@router.post("/sharing/visitor-bookings/{reference}/{action}", response={200: BookingOut}, auth=None,
             summary="A visitor without an account handles their booking with its reference")
def visitor_booking_action(request, reference: str, action: str):
    if action not in _ACTIONS:
        return problem_response(404, "Not found.", code="not_found")
    booking = selectors.booking_by_reference(reference)
    return Status(200, _ACTIONS[action](actor=None, booking=booking, reference=reference))


# --- sensors in -----------------------------------------------------------------------------------

def _ingest_answer(via: str, parse, zone=None) -> JsonResponse:
    device_ref = ""
    try:
        reading, device = parse()
        device_ref = device.external_id
        result = services.ingest(via=via, reading=reading, device=device)
    except services.IngestError as error:
        services.log_rejection(via=via, error=error, device_ref=device_ref, zone=zone)
        return problem_response(error.status, error.detail, code=error.reason)
    return JsonResponse({"result": result, "device": device_ref}, status=200 if result != "applied" else 202)


@router.post("/sharing/readings", auth=None, summary="A signed sensor reading (HTTP JSON, HMAC-SHA256)")
def post_reading(request):
    return _ingest_answer("http", lambda: ingest.parse_signed(request.body, request.headers.get("X-Pumasi-Signature")))


def _zone_secret(request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:]
    return request.headers.get("X-Pumasi-Secret")


@router.post("/sharing/ingest/tts/{slug}", auth=None, summary="The Things Stack v3 uplink webhook")
def tts_uplink(request, slug: str):
    zone = selectors.zone_by_slug(slug)

    def parse():
        ingest.check_zone_secret(zone, _zone_secret(request))
        return ingest.parse_tts(request.body, zone)

    return _ingest_answer("tts", parse, zone)


@router.post("/sharing/ingest/chirpstack/{slug}", auth=None, summary="ChirpStack v4 HTTP integration (?event=up)")
def chirpstack_event(request, slug: str, event: str = ""):
    zone = selectors.zone_by_slug(slug)
    if event != "up":
        try:
            ingest.check_zone_secret(zone, _zone_secret(request))
        except services.IngestError as error:
            services.log_rejection(via="chirpstack", error=error, zone=zone)
            return problem_response(error.status, error.detail, code=error.reason)
        return JsonResponse({"result": "ignored", "event": event}, status=200)

    def parse():
        ingest.check_zone_secret(zone, _zone_secret(request))
        return ingest.parse_chirpstack(request.body, zone)

    return _ingest_answer("chirpstack", parse, zone)


# --- the board, and NGSI-LD -----------------------------------------------------------------------

@router.get("/sharing/zones/{slug}/board", auth=None, summary="The live board as JSON (public when the zone says so)")
def board(request, slug: str):
    return JsonResponse(selectors.board(selectors.public_zone(request.user, slug)), json_dumps_params={
        "ensure_ascii": False})


@router.get("/sharing/ngsi-ld/zones/{slug}/entities", auth=None,
            summary="FIWARE NGSI-LD ParkingSpot / ParkingGroup entities (options=keyValues for the simplified form)")
def ngsi_entities(request, slug: str, type: str = "ParkingSpot", options: str = ""):
    zone = selectors.public_zone(request.user, slug)
    if type not in ("ParkingSpot", "ParkingGroup"):
        return problem_response(400, "type must be ParkingSpot or ParkingGroup.", code="bad_type")
    key_values = "keyValues" in options.split(",")
    entities = ngsi.parking_spots(zone, key_values) if type == "ParkingSpot" else [ngsi.parking_group(zone, key_values)]
    return JsonResponse(entities, safe=False, content_type="application/ld+json",
                        json_dumps_params={"ensure_ascii": False})
