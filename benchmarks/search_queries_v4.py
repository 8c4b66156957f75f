"""A fourth, fresh held-out set of search queries for the document search quality benchmark.

Written on 2026-12-05 by a helper session that was kept BLIND to the search implementation: it did not open
pipelines/documents/ (search, index, embedding, synonym or abbreviation tables), tests/documents/ nor the
README's search section, and it never ran the benchmark or any search. It knew only the component names, sides,
symptoms and fluids of pipelines.synthetic.documents, and read the earlier query sets (paraphrase and held_out
in benchmarks/documents.py, benchmarks/search_queries_v3.py) only to avoid their wording.

Voice: an engineer or reliability analyst typing into a search box to dig up past write-ups. Four forms, chosen
per finding by a stable hash of its key (hashlib, not Python's salted hash()):

- "kw": short keyword strings as people type them ("#2 eng fan blade damage");
- "ask": questions ("any history of the right brake heat stack wearing out early?");
- "plain": plain-English descriptions by someone who does not know the part's textbook name, describing it by
  what it does or where it sits ("the pump in the left wing tank that pushes fuel to the engine");
- "ata": industry / ATA-style names and synonyms, often with the ATA chapter ("ATA 78 engine 1 thrust reverser
  translating sleeve hydraulic leakage").

NEVER tune on this set (weights, vocabulary, synonyms, thresholds): it is scored once, and its figure is only
honest as long as nothing was changed after looking at it.
"""

from __future__ import annotations

import hashlib

FORMS = ("kw", "ask", "plain", "ata")

# Per form, one name per component of pipelines.synthetic.documents.COMPONENTS (keyed by its document name);
# "{s}" is where the side goes (components without a side have none).
V4_PARTS: dict[str, dict[str, str]] = {
    "kw": {
        "air conditioning pack valve": "{s} pack valve",
        "cabin pressure controller": "pressurization CPC",
        "generator control unit": "{s} GCU",
        "main battery": "main batt",
        "lavatory smoke detector": "{s} lav smoke alarm",
        "cargo fire detection loop": "{s} cargo fire det loop",
        "aileron trim tab": "{s} ail tab",
        "elevator hinge bracket": "{s} elev hinge bkt",
        "rudder power control unit": "rudder PCU",
        "flap track fairing": "{s} flap canoe fairing",
        "fuel quantity indicator": "{s} fuel qty ind",
        "fuel boost pump": "{s} boost pump",
        "engine driven hydraulic pump": "{s} EDP",
        "hydraulic reservoir": "{s} hyd res",
        "pitot probe heater": "{s} pitot probe heat",
        "wing anti-ice valve": "{s} WAI valve",
        "main landing gear actuator": "{s} MLG actuator",
        "nose wheel steering actuator": "nose steering actuator",
        "brake assembly": "{s} main brake",
        "main wheel tire": "{s} main whl tire",
        "landing light": "{s} ldg lt",
        "wingtip navigation light": "{s} wingtip nav lt",
        "weather radar antenna": "wx radar ant",
        "standby altimeter": "standby alt",
        "crew oxygen mask": "{s} crew O2 mask",
        "engine bleed air valve": "{s} eng bleed vlv",
        "APU starter motor": "APU start motor",
        "cargo door hinge": "{s} cgo door hinge",
        "passenger entry door seal": "{s} pax door seal",
        "cockpit windshield": "{s} windshield pane",
        "engine cowl latch": "{s} eng cowl latch",
        "engine fan blade": "{s} eng fan blade",
        "thrust reverser sleeve": "{s} TR sleeve",
        "engine oil filter": "{s} eng oil filter",
    },
    "ask": {
        "air conditioning pack valve": "the {s} pack valve",
        "cabin pressure controller": "the pressurization controller",
        "generator control unit": "the {s} generator control box (GCU)",
        "main battery": "the aircraft's main battery",
        "lavatory smoke detector": "the smoke detector in the {s} lavatory",
        "cargo fire detection loop": "the {s} cargo hold fire detection loop",
        "aileron trim tab": "the {s} aileron trim tab",
        "elevator hinge bracket": "the {s} elevator hinge bracket",
        "rudder power control unit": "the rudder PCU",
        "flap track fairing": "the {s} wing flap track fairing",
        "fuel quantity indicator": "the {s} tank fuel quantity indication",
        "fuel boost pump": "the {s} fuel boost pump",
        "engine driven hydraulic pump": "the {s} hydraulic pump (EDP)",
        "hydraulic reservoir": "the {s} hydraulic reservoir",
        "pitot probe heater": "the {s} pitot heater",
        "wing anti-ice valve": "the {s} wing anti-ice valve",
        "main landing gear actuator": "the {s} main gear retraction actuator",
        "nose wheel steering actuator": "the nosewheel steering actuator",
        "brake assembly": "the {s} brake heat stack",
        "main wheel tire": "the {s} main wheel tire",
        "landing light": "the {s} landing light",
        "wingtip navigation light": "the {s} wingtip nav light",
        "weather radar antenna": "the weather radar antenna",
        "standby altimeter": "the standby altimeter",
        "crew oxygen mask": "the {s} crew oxygen mask",
        "engine bleed air valve": "the {s} bleed air valve",
        "APU starter motor": "the APU starter",
        "cargo door hinge": "the {s} cargo door hinge",
        "passenger entry door seal": "the {s} passenger door seal",
        "cockpit windshield": "the {s} cockpit windshield",
        "engine cowl latch": "the {s} cowl latch",
        "engine fan blade": "the {s} fan blade",
        "thrust reverser sleeve": "the {s} reverser sleeve",
        "engine oil filter": "the {s} oil filter",
    },
    "plain": {
        "air conditioning pack valve": "the valve letting hot air into the {s} air conditioning pack",
        "cabin pressure controller": "the unit that automatically controls cabin altitude",
        "generator control unit": "the box that regulates the generator on engine {s}",
        "main battery": "the big battery that powers the plane before engine start",
        "lavatory smoke detector": "the ceiling smoke alarm in the {s} toilet",
        "cargo fire detection loop": "the heat-sensing fire warning cable in the {s} baggage compartment",
        "aileron trim tab": "the small adjustable flap on the back edge of the {s} aileron",
        "elevator hinge bracket": "the bracket the {s} elevator pivots on",
        "rudder power control unit": "the hydraulic unit that moves the rudder",
        "flap track fairing": "the pointed pod under the {s} wing covering the flap mechanism",
        "fuel quantity indicator": "the gauge showing how much fuel is in the {s} tank",
        "fuel boost pump": "the pump in the {s} wing tank that pushes fuel to the engine",
        "engine driven hydraulic pump": "the hydraulic pump driven off the gearbox of engine {s}",
        "hydraulic reservoir": "the tank holding fluid for hydraulic system {s}",
        "pitot probe heater": "the heating on the {s} airspeed tube",
        "wing anti-ice valve": "the valve that sends hot air to de-ice the {s} wing",
        "main landing gear actuator": "the hydraulic ram that raises and lowers the {s} main gear",
        "nose wheel steering actuator": "the hydraulic cylinder that turns the nose wheels",
        "brake assembly": "the brake pack on the {s} main wheels",
        "main wheel tire": "the tire on the {s} main gear wheel",
        "landing light": "the bright light under the {s} wing used for landing",
        "wingtip navigation light": "the colored position light out on the {s} wingtip",
        "weather radar antenna": "the radar dish inside the nose cone",
        "standby altimeter": "the small backup altitude instrument in the cockpit",
        "crew oxygen mask": "the {s} emergency oxygen mask in the cockpit",
        "engine bleed air valve": "the valve that takes hot air off engine {s}",
        "APU starter motor": "the motor that spins up the small turbine in the tail",
        "cargo door hinge": "the hinge on the {s} baggage door",
        "passenger entry door seal": "the rubber seal around the {s} boarding door",
        "cockpit windshield": "the {s} main window in front of the pilots",
        "engine cowl latch": "the clip that holds the cover shut on engine {s}",
        "engine fan blade": "the big blades at the front of engine {s}",
        "thrust reverser sleeve": "the sliding part of engine {s} that opens to slow the plane down",
        "engine oil filter": "the filter that cleans the oil in engine {s}",
    },
    "ata": {
        "air conditioning pack valve": "ATA 21 {s} ECS pack valve",
        "cabin pressure controller": "ATA 21 pressurization controller",
        "generator control unit": "ATA 24 GCU engine {s}",
        "main battery": "ATA 24 primary ship's battery",
        "lavatory smoke detector": "{s} lavatory smoke detection sensor",
        "cargo fire detection loop": "ATA 26 {s} hold fire/overheat detection loop",
        "aileron trim tab": "ATA 27 {s} aileron balance/trim tab",
        "elevator hinge bracket": "ATA 27 {s} elevator hinge fitting",
        "rudder power control unit": "ATA 27 rudder servo actuator (PCU)",
        "flap track fairing": "ATA 27 {s} flap track fairing (canoe)",
        "fuel quantity indicator": "ATA 28 FQIS {s} tank quantity indicator",
        "fuel boost pump": "ATA 28 {s} wing tank boost pump",
        "engine driven hydraulic pump": "ATA 29 EDP engine {s}",
        "hydraulic reservoir": "ATA 29 hydraulic system {s} reservoir",
        "pitot probe heater": "ATA 30 {s} pitot heat element",
        "wing anti-ice valve": "ATA 30 {s} wing TAI valve",
        "main landing gear actuator": "ATA 32 {s} main gear actuating cylinder",
        "nose wheel steering actuator": "ATA 32 NWS actuating cylinder",
        "brake assembly": "ATA 32 {s} MLG wheel brake",
        "main wheel tire": "ATA 32 {s} MLG main wheel tire",
        "landing light": "ATA 33 {s} fixed landing light",
        "wingtip navigation light": "ATA 33 {s} wingtip navigation/position light",
        "weather radar antenna": "ATA 34 weather radar flat plate antenna",
        "standby altimeter": "ATA 34 standby barometric altimeter",
        "crew oxygen mask": "ATA 35 {s} flight crew O2 mask",
        "engine bleed air valve": "ATA 36 engine {s} HP bleed valve",
        "APU starter motor": "ATA 49 APU electric starter",
        "cargo door hinge": "ATA 52 {s} cargo compartment door hinge",
        "passenger entry door seal": "ATA 52 {s} passenger door seal",
        "cockpit windshield": "ATA 56 {s} No. 1 flight deck window",
        "engine cowl latch": "ATA 71 eng {s} nacelle cowl latch",
        "engine fan blade": "ATA 72 engine {s} fan blade",
        "thrust reverser sleeve": "ATA 78 engine {s} thrust reverser translating sleeve",
        "engine oil filter": "ATA 79 engine {s} main oil filter",
    },
}

# Per form, the words put in place of "{s}" for each side of pipelines.synthetic.documents.
V4_SIDES: dict[str, dict[str, str]] = {
    "kw": {"left": "L", "right": "R", "number 1": "#1", "number 2": "#2", "forward": "fwd", "aft": "aft",
           "captain side": "capt", "first officer side": "FO", "system A": "A sys", "system B": "B sys"},
    "ask": {"left": "left", "right": "right side", "number 1": "#1 engine", "number 2": "#2 engine",
            "forward": "forward", "aft": "aft", "captain side": "captain's", "first officer side": "first officer's",
            "system A": "system A", "system B": "system B"},
    "plain": {"left": "left", "right": "right", "number 1": "one", "number 2": "two", "forward": "front",
              "aft": "rear", "captain side": "captain's", "first officer side": "first officer's",
              "system A": "A", "system B": "B"},
    "ata": {"left": "left", "right": "right", "number 1": "1", "number 2": "2", "forward": "forward",
            "aft": "aft", "captain side": "capt", "first officer side": "F/O", "system A": "A", "system B": "B"},
}

# What leaks, per form: by the component's fluid, or (for components without one) by the component itself.
V4_FLUIDS: dict[str, dict[str | None, str]] = {
    "kw": {"hydraulic fluid": "hyd", "fuel": "fuel", "engine oil": "oil"},
    "ask": {"hydraulic fluid": "hydraulic fluid", "fuel": "fuel", "engine oil": "oil"},
    "plain": {"hydraulic fluid": "hydraulic fluid", "fuel": "fuel", "engine oil": "oil"},
    "ata": {"hydraulic fluid": "hydraulic", "fuel": "fuel", "engine oil": "oil"},
}
V4_GASES: dict[str, dict[str, str]] = {
    "kw": {"crew oxygen mask": "O2", "engine bleed air valve": "bleed air", "passenger entry door seal": "air"},
    "ask": {"crew oxygen mask": "oxygen", "engine bleed air valve": "hot bleed air",
            "passenger entry door seal": "cabin air"},
    "plain": {"crew oxygen mask": "oxygen", "engine bleed air valve": "air",
              "passenger entry door seal": "cabin pressure air"},
    "ata": {"crew oxygen mask": "oxygen", "engine bleed air valve": "bleed air",
            "passenger entry door seal": "pressurization"},
}

# Per form and symptom, one or two templates ({p} the part with its side, {fluid} what leaks); which one is
# used is chosen by the hash too.
V4_SYMPTOMS: dict[str, dict[str, tuple[str, ...]]] = {
    "kw": {
        "leak": ("{p} {fluid} leak",),
        "crack": ("{p} crack", "{p} cracking"),
        "corrosion": ("{p} corrosion", "{p} corroded"),
        "chafing": ("{p} chafed wiring",),
        "inoperative": ("{p} failure", "{p} failed, no function"),
        "intermittent": ("{p} intermittent", "{p} intermittent fault"),
        "wear": ("{p} worn", "{p} wear limits"),
        "loose": ("{p} loose hardware",),
        "noise": ("{p} noisy", "{p} abnormal noise"),
        "vibration": ("{p} vibration", "{p} vibes"),
        "damage": ("{p} damage", "{p} nick damage"),
        "overheat": ("{p} overtemp", "{p} overheat"),
        "low_pressure": ("{p} low press",),
        "low_voltage": ("{p} low volts",),
        "delamination": ("{p} delamination",),
        "contamination": ("{p} metal contamination", "{p} metal found"),
    },
    "ask": {
        "leak": ("any history of {fluid} leaks at {p}?", "has {p} leaked {fluid} before?"),
        "crack": ("have we found cracks in {p} before?", "any previous cracking reported on {p}?"),
        "corrosion": ("how common is corrosion on {p}?", "any past findings of {p} corroding?"),
        "chafing": ("any records of chafed wires around {p}?", "has the wiring at {p} rubbed through before?"),
        "inoperative": ("has {p} ever failed completely?", "any write-ups of {p} going inop?"),
        "intermittent": ("any history of intermittent faults on {p}?", "is {p} known for intermittent failures?"),
        "wear": ("any history of {p} wearing out early?", "is {p} wearing faster than expected?"),
        "loose": ("anyone found {p} with loose fasteners before?", "has {p} come loose before?"),
        "noise": ("anyone reported {p} making abnormal noise?", "what would cause noise from {p}?"),
        "vibration": ("any history of vibration at {p}?", "has {p} shown vibration problems before?"),
        "damage": ("any previous damage reports on {p}?", "how often does {p} get damaged?"),
        "overheat": ("has {p} overheated before?", "any write-ups for {p} overheating?"),
        "low_pressure": ("any history of low pressure on {p}?", "why would {p} show low pressure?"),
        "low_voltage": ("has {p} shown low voltage before?", "any write-ups for low voltage on {p}?"),
        "delamination": ("has {p} delaminated before?", "any history of {p} delamination?"),
        "contamination": ("any cases of metal contamination in {p}?", "how often do we find metal in {p}?"),
    },
    "plain": {
        "leak": ("{fluid} leaking out of {p}",),
        "crack": ("there's a crack in {p}",),
        "corrosion": ("{p} all corroded",),
        "chafing": ("wires rubbed raw where they run by {p}",),
        "inoperative": ("{p} stopped working completely",),
        "intermittent": ("{p} only works some of the time",),
        "wear": ("{p} worn down",),
        "loose": ("{p} loose, screws coming undone",),
        "noise": ("{p} making an unusual noise",),
        "vibration": ("{p} shaking a lot",),
        "damage": ("something hit {p} and damaged it",),
        "overheat": ("{p} getting way too hot",),
        "low_pressure": ("pressure too low at {p}",),
        "low_voltage": ("{p} showing low volts",),
        "delamination": ("the layers in {p} are coming unstuck",),
        "contamination": ("metal bits caught in {p}",),
    },
    "ata": {
        "leak": ("{p} - {fluid} leakage",),
        "crack": ("{p} - cracking",),
        "corrosion": ("{p} - corrosion damage",),
        "chafing": ("{p} - wiring chafe",),
        "inoperative": ("{p} - inoperative",),
        "intermittent": ("{p} - intermittent operation",),
        "wear": ("{p} - premature wear",),
        "loose": ("{p} - loose/missing fasteners",),
        "noise": ("{p} - abnormal noise",),
        "vibration": ("{p} - high vibration",),
        "damage": ("{p} - physical damage",),
        "overheat": ("{p} - overtemperature",),
        "low_pressure": ("{p} - pressure loss",),
        "low_voltage": ("{p} - undervoltage",),
        "delamination": ("{p} - delamination",),
        "contamination": ("{p} - metal chip contamination",),
    },
}


def _digest(finding) -> bytes:
    return hashlib.sha256(finding.key.encode("utf-8")).digest()


def v4_form(finding) -> str:
    """Which of FORMS a finding's query is written in (stable across runs and machines)."""
    return FORMS[_digest(finding)[0] % len(FORMS)]


def v4_query(finding) -> str:
    """A query for a finding in the fourth held-out words above, its form chosen by a stable hash of its key."""
    from pipelines.synthetic.documents import COMPONENTS

    digest = _digest(finding)
    form = FORMS[digest[0] % len(FORMS)]
    fluid = next(c[4] for c in COMPONENTS if c[1] == finding.component)
    side = V4_SIDES[form][finding.side] if finding.side else ""
    part = " ".join(V4_PARTS[form][finding.component].format(s=side).split())
    leaks = V4_FLUIDS[form][fluid] if fluid else V4_GASES[form].get(finding.component, "fluid")
    templates = V4_SYMPTOMS[form][finding.symptom]
    query = templates[digest[1] % len(templates)].format(p=part, fluid=leaks)
    return query[0].upper() + query[1:] if form == "plain" else query
