"""A zone's spaces as FIWARE NGSI-LD entities (Smart Data Models: Parking/ParkingSpot and
ParkingGroup), in the normalized and the keyValues forms, so smart-city platforms can read them."""

from __future__ import annotations

from django.utils import timezone

from pumasi.sharing import selectors
from pumasi.sharing.models import Zone

CONTEXT = [
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Parking/master/context.jsonld",
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.7.jsonld",
]


def group_id(zone: Zone) -> str:
    return f"urn:ngsi-ld:ParkingGroup:{zone.slug}"


def spot_id(zone: Zone, code: str) -> str:
    return f"urn:ngsi-ld:ParkingSpot:{zone.slug}:{code}"


def _point(latitude, longitude):
    if latitude is None or longitude is None:
        return None
    return {"type": "Point", "coordinates": [float(longitude), float(latitude)]}


def _entity(entity_id: str, kind: str, attributes: dict, key_values: bool, observed: dict) -> dict:
    entity = {"id": entity_id, "type": kind}
    for name, value in attributes.items():
        if value is None:
            continue
        if key_values:
            entity[name] = value
        elif name == "location":
            entity[name] = {"type": "GeoProperty", "value": value}
        elif name.startswith("ref"):
            entity[name] = {"type": "Relationship", "object": value}
        else:
            entity[name] = {"type": "Property", "value": value}
            if name in observed:
                entity[name]["observedAt"] = observed[name]
    entity["@context"] = CONTEXT
    return entity


def parking_spots(zone: Zone, key_values: bool = False) -> list[dict]:
    board = selectors.board(zone)
    by_code = {space.code: space for space in selectors.resources(zone)}
    out = []
    for row in board["spaces"]:
        space = by_code[row["code"]]
        # status: free / occupied / closed (not shared: its holder opted out) / unknown (sensor silent)
        status = row["status"] if row["shared"] else "closed"
        point = _point(space.latitude, space.longitude) or _point(zone.latitude, zone.longitude)
        category = ["onStreet", "forResidents"] if zone.kind == "parking" else ["offStreet"]
        if not row["shared"]:
            category = [*category, "private"]
        out.append(_entity(spot_id(zone, space.code), "ParkingSpot", {
            "name": space.name or space.code, "status": status, "category": category, "location": point,
            "refParkingGroup": group_id(zone),
        }, key_values, {"status": row["since"] or board["updated_at"]}))
    return out


def parking_group(zone: Zone, key_values: bool = False) -> dict:
    board = selectors.board(zone)
    now = timezone.now().isoformat()
    return _entity(group_id(zone), "ParkingGroup", {
        "name": zone.name, "category": ["onstreet", "onlyResidents"] if zone.kind == "parking" else ["offstreet"],
        "location": _point(zone.latitude, zone.longitude), "totalSpotNumber": board["total"],
        "availableSpotNumber": board["free"], "occupancyDetectionType": ["singleSpaceDetection"],
        "address": {"streetAddress": zone.address} if zone.address else None,
    }, key_values, {"availableSpotNumber": now})
