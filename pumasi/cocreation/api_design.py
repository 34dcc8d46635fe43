"""API of community product design: calls, designs (multipart upload), scores, ranked results,
selection, production plans and production orders. Mounted by the app's api.py."""

from __future__ import annotations

from datetime import date, datetime

from django.contrib.auth import get_user_model
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import Field

from pumasi.cocreation import services_design as services
from pumasi.cocreation.models import Design, DesignCall, ProductionOrder
from pumasi.communities.models import Community
from pumasi.core.api import require_scope
from pumasi.core.errors import NotFound
from pumasi.core.pagination import paginate
from pumasi.market import permissions as market_permissions
from pumasi.market.models import Product

router = Router(tags=["product design"])


def _community(request, slug: str) -> Community:
    community = Community.objects.filter(slug=slug).first()
    if community is None or market_permissions.role_of(request.user, community) is None:
        raise NotFound("No such community.")
    return community


def _call(community, call_id: int) -> DesignCall:
    call = DesignCall.objects.filter(community=community, pk=call_id).first()
    if call is None:
        raise NotFound("No such design call.")
    return call


def _design(community, design_id: int) -> Design:
    design = Design.objects.select_related("call", "designer").filter(community=community, pk=design_id).first()
    if design is None:
        raise NotFound("No such design.")
    return design


class CallIn(Schema):
    title: str = Field(min_length=1, max_length=140)
    brief: str = Field(min_length=1, max_length=5000)
    submissions_close_at: datetime
    scoring_closes_at: datetime
    royalty_bp: int = Field(ge=1, le=10000)
    terms: str = Field("", max_length=3000)
    public: bool = True


class CallOut(Schema):
    id: int
    title: str
    brief: str
    submissions_close_at: datetime
    scoring_closes_at: datetime
    royalty_bp: int
    terms: str
    public: bool
    share_url: str

    @staticmethod
    def resolve_share_url(obj) -> str:
        return f"/c/{obj.community.slug}/design-calls/{obj.pk}/"


class CallPage(Schema):
    items: list[CallOut]
    next_cursor: str | None


class DesignOut(Schema):
    id: int
    call_id: int
    title: str
    description: str
    designer_id: int
    image_url: str
    status: str
    variants: list[str]
    score_count: int
    mean_score: float | None
    product_id: int | None

    @staticmethod
    def resolve_image_url(obj) -> str:
        return obj.image.url if obj.image else ""

    @staticmethod
    def resolve_variants(obj) -> list[str]:
        return [v.label for v in obj.variants.all()]


class DesignPage(Schema):
    items: list[DesignOut]
    next_cursor: str | None


class ScoreIn(Schema):
    score: int


class ScoreOut(Schema):
    design_id: int
    score: int


class SelectIn(Schema):
    unit_cost: int = Field(ge=0)
    floor_price: int = Field(ge=1)
    low_stock_threshold: int = Field(5, ge=0, le=100000)
    community_fund_bp: int = Field(0, ge=0, le=10000)
    production_manager_id: int | None = None


class SelectedOut(Schema):
    product_id: int
    grant_scope: str


class ProductionIn(Schema):
    quantities: dict[str, int]
    target_date: date
    materials: str = Field("", max_length=2000)
    note: str = Field("", max_length=500)


class UpdateOut(Schema):
    status: str
    note: str
    source: str
    created_at: datetime


class ProductionOrderOut(Schema):
    id: int
    product_id: int
    status: str
    kind: str
    target_date: date
    unit_cost: int
    materials: str
    external_ref: str
    quantities: dict[str, int]
    updates: list[UpdateOut]

    @staticmethod
    def resolve_kind(obj) -> str:
        return obj.plan.kind

    @staticmethod
    def resolve_target_date(obj) -> date:
        return obj.plan.target_date

    @staticmethod
    def resolve_unit_cost(obj) -> int:
        return obj.plan.unit_cost

    @staticmethod
    def resolve_materials(obj) -> str:
        return obj.plan.materials

    @staticmethod
    def resolve_quantities(obj) -> dict[str, int]:
        return {line.variant.label: line.quantity for line in obj.plan.lines.select_related("variant")}

    @staticmethod
    def resolve_updates(obj) -> list:
        return list(obj.updates.all())


class ProductionView(Schema):
    product_id: int
    title: str
    status: str
    unit_cost: int
    floor_price: int
    stock: dict[str, int]
    orders: list[ProductionOrderOut]


class AdvanceIn(Schema):
    status: str
    note: str = Field("", max_length=500)
    external_ref: str = Field("", max_length=80)


@router.get("/cocreation/{slug}/design-calls", response=CallPage)
def list_calls(request, slug: str, cursor: str | None = None, limit: int = 50):
    community = _community(request, slug)
    return paginate(DesignCall.objects.filter(community=community).select_related("community"), cursor=cursor, limit=limit)


@router.post("/cocreation/{slug}/design-calls", response={201: CallOut}, summary="Open a design call")
def open_call(request, slug: str, payload: CallIn):
    require_scope(request, "cocreation:write")
    return Status(201, services.open_call(actor=request.user, community=_community(request, slug), **payload.dict()))


@router.get("/cocreation/{slug}/design-calls/{call_id}", response=CallOut)
def get_call(request, slug: str, call_id: int):
    return _call(_community(request, slug), call_id)


@router.post("/cocreation/{slug}/design-calls/{call_id}/designs", response={201: DesignOut},
             summary="Submit a design (multipart: title, description, variants comma-separated, image)")
def submit_design(request, slug: str, call_id: int, title: Form[str], variants: Form[str], image: File[UploadedFile],
                  description: Form[str] = ""):
    require_scope(request, "cocreation:write")
    call = _call(_community(request, slug), call_id)
    labels = [part.strip() for part in variants.split(",") if part.strip()]
    return Status(201, services.submit_design(actor=request.user, call=call, title=title, description=description,
                                              image=image, variants=labels))


@router.get("/cocreation/{slug}/design-calls/{call_id}/designs", response=DesignPage)
def list_designs(request, slug: str, call_id: int, cursor: str | None = None, limit: int = 50):
    call = _call(_community(request, slug), call_id)
    return paginate(call.designs.prefetch_related("variants"), cursor=cursor, limit=limit, newest_first=False)


@router.get("/cocreation/{slug}/design-calls/{call_id}/results", response=list[DesignOut],
            summary="Designs ranked by the community's scores (organisers)")
def results(request, slug: str, call_id: int):
    community = _community(request, slug)
    market_permissions.require_organiser(request.user, community)
    return services.ranked(_call(community, call_id))


@router.post("/cocreation/{slug}/designs/{design_id}/score", response={201: ScoreOut})
def score(request, slug: str, design_id: int, payload: ScoreIn):
    require_scope(request, "cocreation:write")
    given = services.score_design(actor=request.user, design=_design(_community(request, slug), design_id),
                                  score=payload.score)
    return Status(201, {"design_id": given.design_id, "score": given.score})


@router.post("/cocreation/{slug}/designs/{design_id}/select", response={201: SelectedOut},
             summary="Choose a design: its product is created and the designer gets the production right on it")
def select(request, slug: str, design_id: int, payload: SelectIn):
    require_scope(request, "cocreation:write")
    community = _community(request, slug)
    data = payload.dict()
    manager_id = data.pop("production_manager_id")
    manager = get_user_model().objects.filter(pk=manager_id).first() if manager_id else None
    product = services.select_design(actor=request.user, design=_design(community, design_id),
                                     production_manager=manager, **data)
    return Status(201, {"product_id": product.pk, "grant_scope": product.grant_scope})


def _product(request, community, product_id: int) -> Product:
    product = Product.objects.select_related("community", "designer").filter(community=community, pk=product_id).first()
    if product is None or not (market_permissions.is_organiser(request.user, community)
                               or market_permissions.has_production_right(request.user, product)):
        raise NotFound("No such product in production.")
    return product


@router.get("/cocreation/{slug}/production/{product_id}", response=ProductionView,
            summary="The production view of one product (organisers, or its designer while holding the right)")
def production(request, slug: str, product_id: int):
    product = _product(request, _community(request, slug), product_id)
    orders = ProductionOrder.objects.filter(product=product).select_related("plan").order_by("pk")
    return {"product_id": product.pk, "title": product.title, "status": product.status, "unit_cost": product.unit_cost,
            "floor_price": product.floor_price, "stock": {v.label: v.stock for v in product.variants.order_by("pk")},
            "orders": list(orders)}


@router.post("/cocreation/{slug}/production/{product_id}/requests", response={201: ProductionOrderOut},
             summary="Plan a production run and request it (first run or re-production)")
def request_production(request, slug: str, product_id: int, payload: ProductionIn):
    require_scope(request, "cocreation:write")
    product = _product(request, _community(request, slug), product_id)
    return Status(201, services.request_production(actor=request.user, product=product, **payload.dict()))


@router.post("/cocreation/{slug}/production-orders/{order_id}/status", response=ProductionOrderOut,
             summary="Move a production order one step (organisers or the company's system)")
def advance(request, slug: str, order_id: int, payload: AdvanceIn):
    require_scope(request, "cocreation:write")
    community = _community(request, slug)
    order = services.production_order_for(request.user, community, order_id)
    return services.advance_production(actor=request.user, order=order, source="api", **payload.dict())
