"""Database models of the sharing capability: zones, resources and their holders, sharing
policies (time windows per audience), bookings, occupancy sessions, sensors and readings.

Invariants live in the database: one code per zone, one open occupancy session per space,
one active device per space, readings de-duplicated per device, and no two live bookings of
one resource overlapping (an exclusion constraint on PostgreSQL, added by migration 0002;
on SQLite every write transaction takes the database write lock at BEGIN, so the overlap
check and the insert in `services.create_booking` cannot interleave across processes).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

DAY_BITS = 0xFF  # Mon..Sun are bits 0..6, public holidays bit 7
HOLIDAY_BIT = 7


class Zone(models.Model):
    class Kind(models.TextChoices):
        PARKING = "parking", _("Parking street")
        WORKSPACE = "workspace", _("Shared workspace")
        OTHER = "other", _("Other")

    community = models.ForeignKey("communities.Community", on_delete=models.CASCADE, related_name="zones")
    slug = models.SlugField(_("address"), max_length=60, unique=True)
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.PARKING)
    address = models.CharField(_("street address"), max_length=200, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Seoul")
    latitude = models.DecimalField(_("latitude"), max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(_("longitude"), max_digits=9, decimal_places=6, null=True, blank=True)
    allow_visitors = models.BooleanField(_("visitors without an account may book"), default=False)
    public_board = models.BooleanField(_("the board is public"), default=True)
    sensor_silence_seconds = models.PositiveIntegerField(_("a sensor silent this long is unknown (s)"), default=900)
    low_battery_percent = models.PositiveSmallIntegerField(_("low battery alert below (%)"), default=20)
    hold_minutes = models.PositiveSmallIntegerField(_("a held booking lapses after (min)"), default=10)
    no_show_minutes = models.PositiveSmallIntegerField(_("no-show after (min)"), default=15)
    overstay_grace_minutes = models.PositiveSmallIntegerField(_("overstay grace (min)"), default=10)
    construction_cost = models.BigIntegerField(_("cost of building one public space"), default=100_000_000)
    # How a visitor's fee is split, in basis points (sum 10,000).
    split_upkeep_bp = models.PositiveIntegerField(default=5000)
    split_community_bp = models.PositiveIntegerField(default=2000)
    split_holders_bp = models.PositiveIntegerField(default=3000)
    # LoRaWAN network servers authenticate with this (sent as a bearer token or X-Pumasi-Secret).
    ingest_secret = models.CharField(max_length=64)
    board_version = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="zone_name_not_empty"),
            models.CheckConstraint(condition=Q(kind__in=["parking", "workspace", "other"]), name="zone_kind_valid"),
            models.CheckConstraint(
                condition=Q(split_upkeep_bp__gte=0, split_community_bp__gte=0, split_holders_bp__gte=0)
                & Q(split_upkeep_bp=10000 - models.F("split_community_bp") - models.F("split_holders_bp")),
                name="zone_split_sums_to_whole",
            ),
            models.CheckConstraint(condition=Q(low_battery_percent__lte=100), name="zone_battery_threshold_percent"),
            models.CheckConstraint(condition=Q(sensor_silence_seconds__gte=30), name="zone_silence_at_least_30s"),
        ]

    def __str__(self) -> str:
        return self.name


class Holiday(models.Model):
    """A public holiday in a zone's calendar: windows marked for holidays apply, weekday ones do not."""

    zone = models.ForeignKey(Zone, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField(_("date"))
    name = models.CharField(_("name"), max_length=80)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["zone", "date"], name="holiday_once_per_zone_date")]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class Resource(models.Model):
    class Kind(models.TextChoices):
        PARKING_SPACE = "parking_space", _("Parking space")
        DESK = "desk", _("Desk")
        ROOM = "room", _("Meeting room")
        TOOL = "tool", _("Tool")

    class Occupancy(models.TextChoices):
        FREE = "free", _("Free")
        OCCUPIED = "occupied", _("Occupied")
        UNKNOWN = "unknown", _("Unknown")

    zone = models.ForeignKey(Zone, on_delete=models.CASCADE, related_name="resources")
    code = models.CharField(_("code"), max_length=20)
    name = models.CharField(_("name"), max_length=120, blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.PARKING_SPACE)
    map_x = models.PositiveSmallIntegerField(_("position across the map (%)"), default=50)
    map_y = models.PositiveSmallIntegerField(_("position down the map (%)"), default=50)
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    holder = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="held_resources"
    )
    holder_shares = models.BooleanField(_("the holder shares it"), default=True)
    holder_term_start = models.DateField(null=True, blank=True)
    holder_term_end = models.DateField(null=True, blank=True)
    renewal_reminded_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    occupancy = models.CharField(max_length=10, choices=Occupancy.choices, default=Occupancy.UNKNOWN)
    occupancy_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["zone", "code"], name="resource_code_once_per_zone"),
            models.CheckConstraint(condition=~Q(code=""), name="resource_code_not_empty"),
            models.CheckConstraint(condition=Q(map_x__lte=100, map_y__lte=100), name="resource_map_in_percent"),
            models.CheckConstraint(
                condition=Q(occupancy__in=["free", "occupied", "unknown"]), name="resource_occupancy_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["parking_space", "desk", "room", "tool"]), name="resource_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(holder_term_end__isnull=True) | Q(holder_term_start__isnull=True)
                | Q(holder_term_end__gte=models.F("holder_term_start")),
                name="resource_term_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def is_private(self) -> bool:
        return self.holder_id is not None and not self.holder_shares


class PolicyWindow(models.Model):
    """One rule: on these days, from start to end (end <= start crosses midnight; equal means
    all day), this audience may use the zone's resources, for at most max_stay, at this fee."""

    class Audience(models.TextChoices):
        ANYONE = "anyone", _("Anyone, visitors included")
        MEMBERS = "members", _("Members of the community")
        HOLDERS = "holders", _("Permit holders of this zone")

    zone = models.ForeignKey(Zone, on_delete=models.CASCADE, related_name="windows")
    name = models.CharField(_("name"), max_length=80)
    days = models.PositiveSmallIntegerField(_("days"), help_text="bits: Mon=1 … Sun=64, public holidays=128")
    start_time = models.TimeField(_("from"))
    end_time = models.TimeField(_("until"))
    audience = models.CharField(_("who"), max_length=10, choices=Audience.choices)
    resource_kind = models.CharField(_("resource kind"), max_length=20, blank=True, choices=Resource.Kind.choices)
    max_stay_minutes = models.PositiveIntegerField(_("maximum stay (min)"), null=True, blank=True)
    fee_per_hour = models.PositiveIntegerField(_("fee per hour"), default=0)
    notice_minutes = models.PositiveIntegerField(_("notice needed (min)"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(condition=Q(days__gte=1, days__lte=DAY_BITS), name="window_days_valid"),
            models.CheckConstraint(condition=Q(audience__in=["anyone", "members", "holders"]), name="window_audience_valid"),
            models.CheckConstraint(
                condition=Q(max_stay_minutes__isnull=True) | Q(max_stay_minutes__gte=1), name="window_max_stay_positive"
            ),
            models.CheckConstraint(condition=~Q(name=""), name="window_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name


class Booking(models.Model):
    class Status(models.TextChoices):
        HELD = "held", _("Held")
        CONFIRMED = "confirmed", _("Confirmed")
        CHECKED_IN = "checked_in", _("Checked in")
        OVERSTAY = "overstay", _("Overstaying")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        NO_SHOW = "no_show", _("No-show")
        EXPIRED = "expired", _("Hold lapsed")

    LIVE = ("held", "confirmed", "checked_in", "overstay")

    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="bookings")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="bookings"
    )
    visitor_name = models.CharField(max_length=80, blank=True)
    visitor_phone = models.CharField(max_length=20, blank=True)
    plate = models.CharField(max_length=20, blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CONFIRMED)
    audience = models.CharField(max_length=10, blank=True)
    hold_expires_at = models.DateTimeField(null=True, blank=True)
    fee_amount = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, default="KRW")
    fee_posted = models.BooleanField(default=False)
    # A secret a visitor without an account uses to see and cancel the booking.
    reference = models.CharField(max_length=32, unique=True)
    checked_in_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    driver_notified_at = models.DateTimeField(null=True, blank=True)
    committee_notified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["resource", "starts_at"]), models.Index(fields=["status", "ends_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="booking_ends_after_start"),
            models.CheckConstraint(
                condition=Q(status__in=["held", "confirmed", "checked_in", "overstay", "completed", "cancelled",
                                        "no_show", "expired"]),
                name="booking_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(user__isnull=False) | (~Q(visitor_name="") & (~Q(visitor_phone="") | ~Q(plate=""))),
                name="booking_has_someone",
            ),
            models.CheckConstraint(condition=Q(fee_amount__gte=0), name="booking_fee_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.resource} {self.starts_at:%Y-%m-%d %H:%M}–{self.ends_at:%H:%M} ({self.status})"

    @property
    def who(self) -> str:
        if self.user_id:
            return self.user.name
        return self.visitor_name


class Session(models.Model):
    """A stretch of time a sensor saw a space occupied: under a booking, or a walk-in."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="sessions")
    booking = models.ForeignKey(Booking, null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    # Set when the space was taken in a window the general public may not use and nobody claimed it.
    violation = models.BooleanField(default=False)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fee_amount = models.BigIntegerField(default=0)
    fee_posted = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["resource", "-started_at"])]
        constraints = [
            models.UniqueConstraint(fields=["resource"], condition=Q(ended_at__isnull=True), name="session_one_open_per_resource"),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")), name="session_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.resource_id} from {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def walk_in(self) -> bool:
        return self.booking_id is None


class Device(models.Model):
    zone = models.ForeignKey(Zone, on_delete=models.CASCADE, related_name="devices")
    resource = models.ForeignKey(Resource, null=True, blank=True, on_delete=models.SET_NULL, related_name="devices")
    # The device id for HTTP/MQTT and The Things Stack, or the DevEUI (lower-case hex) for ChirpStack.
    external_id = models.CharField(max_length=64, unique=True)
    secret = models.CharField(max_length=64)
    interval_seconds = models.PositiveIntegerField(default=300)
    battery = models.PositiveSmallIntegerField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_measured_at = models.DateTimeField(null=True, blank=True)
    last_fcnt = models.BigIntegerField(null=True, blank=True)
    low_battery = models.BooleanField(default=False)
    silent = models.BooleanField(default=False)
    retired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["resource"], condition=Q(retired_at__isnull=True, resource__isnull=False),
                name="device_one_active_per_resource",
            ),
            models.CheckConstraint(condition=~Q(external_id=""), name="device_id_not_empty"),
            models.CheckConstraint(condition=Q(battery__isnull=True) | Q(battery__lte=100), name="device_battery_percent"),
        ]

    def __str__(self) -> str:
        return self.external_id


class Reading(models.Model):
    class Via(models.TextChoices):
        HTTP = "http", "HTTP"
        MQTT = "mqtt", "MQTT"
        TTS = "tts", "The Things Stack"
        CHIRPSTACK = "chirpstack", "ChirpStack"
        MANUAL = "manual", _("By hand")

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="readings")
    resource = models.ForeignKey(Resource, null=True, on_delete=models.SET_NULL, related_name="+")
    measured_at = models.DateTimeField()
    received_at = models.DateTimeField()
    occupied = models.BooleanField()
    battery = models.PositiveSmallIntegerField(null=True, blank=True)
    fcnt = models.BigIntegerField(null=True, blank=True)
    via = models.CharField(max_length=12, choices=Via.choices)
    # "f<frame counter>" when the device counts frames, else "t<measured time>"; one row per key.
    dedup_key = models.CharField(max_length=48)
    # False when it arrived after a newer reading: kept for the record, never applied.
    applied = models.BooleanField(default=True)

    class Meta:
        indexes = [models.Index(fields=["device", "-measured_at"])]
        constraints = [models.UniqueConstraint(fields=["device", "dedup_key"], name="reading_once_per_device_key")]

    def __str__(self) -> str:
        return f"{self.device_id} {self.measured_at:%Y-%m-%d %H:%M:%S} {'occupied' if self.occupied else 'free'}"


class IngestRejection(models.Model):
    """Sensor traffic that was refused (unknown device, bad signature, malformed), kept for the committee."""

    zone = models.ForeignKey(Zone, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    via = models.CharField(max_length=12)
    device_ref = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=32)
    detail = models.CharField(max_length=300)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.via} {self.device_ref}: {self.reason}"
