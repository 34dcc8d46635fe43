"""Write path of community product design (issue 6, steps 1–5 and 13–15): design calls, designs
with images and variants, community scores, selection (which creates the shop product and grants
the designer the production right on it), production plans and production orders.

The production order moves planned → in production → done → stocked, by the organisers or by the
company's own system (signed inbound event `production.status`); every move is a message to the
designer. Stocked units go into the shop's stock; a first production puts the product on sale.
"""

from __future__ import annotations

import io
import uuid
from datetime import date, datetime

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from pumasi.cocreation.models import (
    Design,
    DesignCall,
    DesignScore,
    DesignVariant,
    ProductionOrder,
    ProductionPlan,
    ProductionPlanLine,
    ProductionUpdate,
)
from pumasi.communities.permissions import RANK, role_of
from pumasi.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from pumasi.core.events import publish_event
from pumasi.market import permissions as market_permissions
from pumasi.market import services as market
from pumasi.market.models import Product, Variant
from pumasi.platform.services import record_audit

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_SIDE = 2000
IMAGE_FORMATS = {"JPEG", "PNG", "WEBP"}
STEPS = ["planned", "in_production", "done", "stocked"]


def _is_member(user, community) -> bool:
    role = role_of(user, community)
    return role is not None and RANK[role] >= RANK["member"]


def _clean_image(upload) -> tuple[bytes, str, int, int]:
    """A real JPEG/PNG/WebP of at most 5 MB, re-encoded from its pixels (no EXIF, no GPS)."""
    if upload is None:
        raise InvalidInput(_("The design was not submitted."), field_errors={"image": [_("Add a picture of the design.")]})
    name = getattr(upload, "name", "image")
    data = upload.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidInput(_("The image is too large."), field_errors={"image": [_("%(name)s: at most 5 MB.") % {"name": name}]})
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        image = Image.open(io.BytesIO(data))
        if image.format not in IMAGE_FORMATS:
            raise InvalidInput(_("Unsupported image type."),
                               field_errors={"image": [_("%(name)s: use JPEG, PNG or WebP.") % {"name": name}]})
        if image.width * image.height > 40_000_000:
            raise InvalidInput(_("The image is too large."), field_errors={"image": [_("At most 40 megapixels.")]})
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidInput(_("That file is not an image."),
                           field_errors={"image": [_("%(name)s: not a JPEG, PNG or WebP image.") % {"name": name}]}) from exc
    image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
    has_alpha = image.mode in ("RGBA", "LA", "P")
    clean = Image.new("RGBA" if has_alpha else "RGB", image.size)
    clean.paste(image.convert(clean.mode))
    out = io.BytesIO()
    if has_alpha:
        clean.save(out, format="PNG", optimize=True)
        return out.getvalue(), "png", clean.width, clean.height
    clean.save(out, format="JPEG", quality=85)
    return out.getvalue(), "jpg", clean.width, clean.height


# --- calls ----------------------------------------------------------------------------------------


def open_call(*, actor, community, title: str, brief: str, submissions_close_at: datetime,
              scoring_closes_at: datetime, royalty_bp: int, terms: str = "", public: bool = True) -> DesignCall:
    market_permissions.require_organiser(actor, community)
    errors: dict[str, list[str]] = {}
    title, brief = (title or "").strip(), (brief or "").strip()
    if not 1 <= len(title) <= 140:
        errors["title"] = [_("Give a title of 1 to 140 characters.")]
    if not 1 <= len(brief) <= 5000:
        errors["brief"] = [_("Write a brief of 1 to 5000 characters.")]
    if len(terms or "") > 3000:
        errors["terms"] = [_("At most 3000 characters.")]
    now = timezone.now()
    if submissions_close_at is None or timezone.is_naive(submissions_close_at) or submissions_close_at <= now:
        errors["submissions_close_at"] = [_("The deadline must lie in the future.")]
    if scoring_closes_at is None or timezone.is_naive(scoring_closes_at) or (
            submissions_close_at is not None and scoring_closes_at <= submissions_close_at):
        errors["scoring_closes_at"] = [_("Scoring closes after the submission deadline.")]
    if isinstance(royalty_bp, bool) or not isinstance(royalty_bp, int) or not 1 <= royalty_bp <= 10000:
        errors["royalty_bp"] = [_("The royalty is 1 to 10000 basis points (0.01 % to 100 %).")]
    if errors:
        raise InvalidInput(_("The call was not opened."), field_errors=errors)
    with transaction.atomic():
        call = DesignCall.objects.create(
            community=community, title=title, brief=brief, submissions_close_at=submissions_close_at,
            scoring_closes_at=scoring_closes_at, royalty_bp=royalty_bp, terms=(terms or "").strip(), public=public,
            created_by=actor)
        record_audit(actor=actor, action="design.call_opened", obj=call, community=community,
                     changes={"title": title, "royalty_bp": royalty_bp,
                              "submissions_close_at": submissions_close_at.isoformat()})
        publish_event(name="cocreation.design_call_opened", community=community,
                      payload={"call_id": call.pk, "title": title})
    return call


def close_phase(*, actor, call: DesignCall) -> DesignCall:
    """The organisers end the current phase early: submissions (scoring then opens at once), or
    scoring (results are final). Deadlines only ever move earlier, so nobody is surprised by more time."""
    market_permissions.require_organiser(actor, call.community)
    with transaction.atomic():
        locked = DesignCall.objects.select_for_update(of=("self",)).get(pk=call.pk)
        now = timezone.now()
        if now < locked.submissions_close_at:
            field, changes = "submissions_close_at", {"submissions_close_at": [locked.submissions_close_at.isoformat(),
                                                                               now.isoformat()]}
        elif now < locked.scoring_closes_at:
            field, changes = "scoring_closes_at", {"scoring_closes_at": [locked.scoring_closes_at.isoformat(),
                                                                         now.isoformat()]}
        else:
            raise Conflict(_("Submissions and scoring have both closed."), code="call_closed")
        setattr(locked, field, now)
        locked.save(update_fields=[field])
        record_audit(actor=actor, action="design.phase_closed", obj=locked, community=locked.community, changes=changes)
        publish_event(name="cocreation.design_call_phase_closed", community=locked.community,
                      payload={"call_id": locked.pk, "closed": field})
    return locked


def submit_design(*, actor, call: DesignCall, title: str, description: str = "", image=None,
                  variants: list[str] | None = None) -> Design:
    if not _is_member(actor, call.community):
        raise PermissionDenied(_("Only members of the community may submit designs."))
    errors: dict[str, list[str]] = {}
    title = (title or "").strip()
    if not 1 <= len(title) <= 140:
        errors["title"] = [_("Give a title of 1 to 140 characters.")]
    if len(description or "") > 5000:
        errors["description"] = [_("At most 5000 characters.")]
    labels = [str(v).strip() for v in (variants or [])]
    if not labels or len(labels) > 50 or any(not 1 <= len(v) <= 80 for v in labels) or len(set(labels)) != len(labels):
        errors["variants"] = [_("Give 1 to 50 distinct variants (sizes, colours), each 1 to 80 characters.")]
    if timezone.now() >= call.submissions_close_at:
        raise Conflict(_("The call closed for submissions."), code="call_closed")
    try:
        data, ext, width, height = _clean_image(image)
    except InvalidInput as exc:
        errors.update(exc.field_errors)
    if errors:
        raise InvalidInput(_("The design was not submitted."), field_errors=errors)
    with transaction.atomic():
        design = Design(call=call, community=call.community, designer=actor, title=title,
                        description=(description or "").strip(), width=width, height=height)
        design.image.save(f"{uuid.uuid4().hex}.{ext}", ContentFile(data), save=False)
        design.save()
        DesignVariant.objects.bulk_create([DesignVariant(design=design, label=label) for label in labels])
        record_audit(actor=actor, action="design.submitted", obj=design, community=call.community,
                     changes={"call": call.pk, "title": title, "variants": labels})
        publish_event(name="cocreation.design_submitted", community=call.community,
                      payload={"call_id": call.pk, "design_id": design.pk})
    return design


def score_design(*, actor, design: Design, score: int) -> DesignScore:
    """0 to 5, once per member and design, while the call's scoring period is open."""
    call = design.call
    if not _is_member(actor, call.community):
        raise PermissionDenied(_("Only members of the community may score designs."))
    now = timezone.now()
    if now < call.submissions_close_at:
        raise Conflict(_("Scoring opens when submissions close."), code="scoring_not_open")
    if now >= call.scoring_closes_at:
        raise Conflict(_("Scoring has closed."), code="scoring_closed")
    if design.designer_id == actor.pk:
        raise Conflict(_("You cannot score your own design."), code="own_design")
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 5:
        raise InvalidInput(_("The score was not given."), field_errors={"score": [_("A whole number from 0 to 5.")]})
    try:
        with transaction.atomic():
            given = DesignScore.objects.create(design=design, voter=actor, score=score)
            Design.objects.filter(pk=design.pk).update(score_sum=F("score_sum") + score, score_count=F("score_count") + 1)
            record_audit(actor=actor, action="design.scored", obj=given, community=call.community,
                         changes={"design": design.pk, "score": score})
    except IntegrityError as exc:
        raise Conflict(_("You already scored this design."), code="already_scored") from exc
    return given


def ranked(call: DesignCall) -> list[Design]:
    """Highest mean score first; more scores break a tie, then the earlier submission."""
    designs = list(call.designs.select_related("designer").prefetch_related("variants"))
    return sorted(designs, key=lambda d: (-(d.mean_score if d.mean_score is not None else -1), -d.score_count, d.pk))


def select_design(*, actor, design: Design, unit_cost: int, floor_price: int, low_stock_threshold: int = 5,
                  production_manager=None, community_fund_bp: int = 0) -> Product:
    """Step 3: the organisers choose a design. Its product is created in the shop (in preparation)
    and the designer gets the production right on that one product, nothing else."""
    call = design.call
    market_permissions.require_organiser(actor, call.community)
    if timezone.now() < call.submissions_close_at:
        raise Conflict(_("Choose a design after submissions close."), code="call_open")
    with transaction.atomic():
        locked = Design.objects.select_for_update(of=("self",)).get(pk=design.pk)
        if locked.status == Design.Status.SELECTED:
            raise Conflict(_("This design was already selected."), code="already_selected")
        product = market.create_product(
            actor=actor, community=call.community, title=locked.title, description=locked.description,
            designer=locked.designer, variants=list(locked.variants.values_list("label", flat=True)),
            unit_cost=unit_cost, floor_price=floor_price, royalty_bp=call.royalty_bp,
            community_fund_bp=community_fund_bp, low_stock_threshold=low_stock_threshold,
            production_manager=production_manager, design_ref=locked.pk,
        )
        if locked.image:
            product.image.name = locked.image.name
            product.save(update_fields=["image"])
        locked.status = Design.Status.SELECTED
        locked.product = product
        locked.save(update_fields=["status", "product"])
        record_audit(actor=actor, action="design.selected", obj=locked, community=call.community,
                     changes={"product": product.pk, "unit_cost": unit_cost, "floor_price": floor_price})
        market.tell(name="cocreation.design_selected", community=call.community, recipient=locked.designer,
                    title=_("Your design %(title)s was chosen! You may now plan its production.") % {"title": locked.title},
                    url=f"/c/{call.community.slug}/production/{product.pk}/",
                    payload={"design_id": locked.pk, "product_id": product.pk})
    return product


# --- production -------------------------------------------------------------------------------------


def request_production(*, actor, product: Product, quantities: dict, target_date: date, materials: str = "",
                       note: str = "") -> ProductionOrder:
    """Steps 4 and 13: the designer (with the production right) or an organiser plans a run and
    asks for it. The first run makes the product; later ones are re-productions."""
    market_permissions.require_designer_or_organiser(actor, product)
    errors: dict[str, list[str]] = {}
    known = {v.pk: v for v in Variant.objects.filter(product=product)}
    clean: dict[int, int] = {}
    if not isinstance(quantities, dict) or not quantities:
        errors["quantities"] = [_("Give a quantity for at least one variant.")]
        quantities = {}
    for key, value in quantities.items():
        try:
            variant_id = int(key)
        except (TypeError, ValueError):
            variant_id = None
        if variant_id not in known:
            errors[f"quantities.{key}"] = [_("No such variant of this product.")]
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
            errors[f"quantities.{key}"] = [_("A whole number from 1 to 1000000.")]
            continue
        clean[variant_id] = value
    if not isinstance(target_date, date) or target_date < timezone.localdate():
        errors["target_date"] = [_("The target date cannot lie in the past.")]
    if len(materials or "") > 2000:
        errors["materials"] = [_("At most 2000 characters.")]
    if len(note or "") > 500:
        errors["note"] = [_("At most 500 characters.")]
    if errors:
        raise InvalidInput(_("Production was not requested."), field_errors=errors)
    with transaction.atomic():
        locked = Product.objects.select_for_update(of=("self",)).get(pk=product.pk)
        if locked.status == Product.Status.ENDED:
            raise Conflict(_("The sale of this product has ended."), code="sale_ended")
        if ProductionOrder.objects.filter(product=locked).exclude(status="stocked").exists():
            raise Conflict(_("A production run of this product is still open."), code="run_open")
        first = not ProductionPlan.objects.filter(product=locked).exists()
        plan = ProductionPlan.objects.create(
            product=locked, community=locked.community, kind="first" if first else "reproduction",
            materials=(materials or "").strip(), target_date=target_date, unit_cost=locked.unit_cost,
            note=(note or "").strip(), requested_by=actor)
        ProductionPlanLine.objects.bulk_create([ProductionPlanLine(plan=plan, variant_id=k, quantity=v)
                                                for k, v in sorted(clean.items())])
        order = ProductionOrder.objects.create(plan=plan, product=locked, community=locked.community)
        ProductionUpdate.objects.create(order=order, status="planned", actor=actor, note=plan.note)
        record_audit(actor=actor, action="production.requested", obj=order, community=locked.community,
                     changes={"kind": plan.kind, "quantities": {str(k): v for k, v in clean.items()},
                              "target_date": str(target_date)})
        people = [locked.designer, *market._production_people(locked)]
        title = (_("Production of %(title)s requested: %(n)s units by %(date)s.") if first else
                 _("Re-production of %(title)s requested: %(n)s units by %(date)s.")) % {
            "title": locked.title, "n": sum(clean.values()), "date": target_date}
        for person in {p.pk: p for p in people}.values():
            market.tell(name="cocreation.production_requested", community=locked.community, recipient=person, title=title,
                        url=f"/c/{locked.community.slug}/production/{locked.pk}/",
                        payload={"production_order_id": order.pk, "product_id": locked.pk})
    return order


def advance_production(*, actor, order: ProductionOrder, status: str, note: str = "", external_ref: str = "",
                       trusted: bool = False, source: str = "ui") -> ProductionOrder:
    """Steps 5, 14, 15: one step forward. 'stocked' puts the produced units into the shop's stock
    (and a first run on sale)."""
    if not trusted:
        market_permissions.require_organiser(actor, order.community)
    if status not in STEPS:
        raise InvalidInput(_("Unknown status."), field_errors={"status": [_("Choose one of: %(s)s.") % {"s": ", ".join(STEPS)}]})
    if len(note or "") > 500 or len(external_ref or "") > 80:
        raise InvalidInput(_("Too long."), field_errors={"note": [_("At most 500 characters.")]})
    with transaction.atomic():
        locked = ProductionOrder.objects.select_for_update(of=("self",)).select_related("product", "plan").get(pk=order.pk)
        if STEPS.index(status) != STEPS.index(locked.status) + 1:
            raise Conflict(_("A production order moves one step at a time: it is %(now)s.") % {
                "now": locked.get_status_display()}, code="bad_step")
        product = locked.product
        if product.status == Product.Status.ENDED:
            raise Conflict(_("The sale of this product has ended."), code="sale_ended")
        locked.status = status
        if external_ref:
            locked.external_ref = external_ref
        locked.save(update_fields=["status", "external_ref", "updated_at"])
        ProductionUpdate.objects.create(order=locked, status=status, note=(note or "").strip(), source=source,
                                        actor=actor if getattr(actor, "is_authenticated", False) else None)
        if status == "stocked":
            market.receive_stock(actor=actor, product=product, trusted=True, note=_("Production run %(n)s") % {"n": locked.pk},
                                 quantities={line.variant_id: line.quantity for line in locked.plan.lines.all()})
            if product.status == Product.Status.DRAFT:
                market.list_product(actor=actor, product=product, trusted=True)
        record_audit(actor=actor, action="production.advanced", obj=locked, community=locked.community,
                     changes={"status": status, "note": note, "source": source})
        label = dict(ProductionOrder.Status.choices)[status]
        market.tell(name="cocreation.production_progress", community=locked.community, recipient=product.designer,
                    title=(_("Production of %(title)s: %(status)s. %(note)s") % {
                        "title": product.title, "status": label, "note": note}).strip(),
                    url=f"/c/{locked.community.slug}/production/{product.pk}/",
                    payload={"status": status, "production_order_id": locked.pk, "product_id": product.pk})
    return locked


def production_order_for(user, community, order_id: int) -> ProductionOrder:
    order = (ProductionOrder.objects.select_related("product", "plan", "community", "product__designer")
             .filter(community=community, pk=order_id).first())
    if order is None:
        raise NotFound(_("No such production order."))
    if not (market_permissions.is_organiser(user, community) or market_permissions.has_production_right(user, order.product)):
        raise NotFound(_("No such production order."))
    return order
