"""A seventh, fresh held-out set of search queries for the document search quality benchmark.

Written on 2026-12-05 by a helper session that was kept BLIND to the search implementation: it did not open
pipelines/documents/ (search, index, embedding, synonym or abbreviation tables), tests/documents/, the README,
nor anything of the work trees or scratch space, and it never ran the benchmark, any search or any embedding
model. It knew only the component names, sides, symptoms and fluids of pipelines.synthetic.documents, and read
the earlier query sets (paraphrase and held_out in benchmarks/documents.py, benchmarks/search_queries_v3.py,
search_queries_v4.py, search_queries_v5.py and search_queries_v6.py) only to avoid their wording and to copy
the structure of v6.

Voice: five more people who reach for the search box, each in their own words. Five forms, chosen per finding
by a stable hash of its key (hashlib sha256, not Python's salted hash()):

- "sms": a terse text message from a mechanic on the ramp to a colleague, lower case, with their own
  abbreviations and the odd typo (lft/rgt, eng1/eng2, capt side/fo side);
- "audit": a quality or safety auditor's finding statement, in formal passive voice ("... was observed ...,
  no defect entry had been raised");
- "planner": a maintenance planner looking for past work on the same defect to plan man-hours, parts and
  hangar slots;
- "british": a UK/Commonwealth licensed engineer's (LAME/B1) tech-log wording, with British spellings and
  trade terms (port/stbd, tyre, undercarriage, windscreen, pitot head, fuel contents, AVTUR, loom);
- "search": what a busy person types into a search box: three to six keywords, no grammar, in any order.

NEVER tune on this set (weights, vocabulary, synonyms, thresholds): it is scored once, and its figure is only
honest as long as nothing was changed after looking at it.
"""

from __future__ import annotations

import hashlib
import itertools

FORMS = ("sms", "audit", "planner", "british", "search")

# Per form, one name per component of pipelines.synthetic.documents.COMPONENTS (keyed by its document name);
# "{s}" is where the side goes (components without a side have none).
V7_PARTS: dict[str, dict[str, str]] = {
    "sms": {
        "air conditioning pack valve": "{s} aircon pak vlv",
        "cabin pressure controller": "cabin press controler",
        "generator control unit": "gcu {s}",
        "main battery": "mn batt",
        "lavatory smoke detector": "smk detctr {s} lav",
        "cargo fire detection loop": "fire loop {s} cgo hold",
        "aileron trim tab": "{s} ailrn trm tab",
        "elevator hinge bracket": "hinge brkt {s} elevator",
        "rudder power control unit": "rddr pcu",
        "flap track fairing": "{s} flp trk fairng",
        "fuel quantity indicator": "{s} fq indicatr",
        "fuel boost pump": "{s} boost pmp",
        "engine driven hydraulic pump": "edp {s}",
        "hydraulic reservoir": "hyd resvr sys {s}",
        "pitot probe heater": "pitot heatr {s}",
        "wing anti-ice valve": "{s} wing ai valve",
        "main landing gear actuator": "{s} mlg retract act",
        "nose wheel steering actuator": "nosewheel steer act",
        "brake assembly": "{s} brk unit",
        "main wheel tire": "{s} mains tire",
        "landing light": "{s} lndg light",
        "wingtip navigation light": "{s} wingtip nav",
        "weather radar antenna": "wx radar antena",
        "standby altimeter": "standby altmtr",
        "crew oxygen mask": "o2 mask {s}",
        "engine bleed air valve": "{s} bld air vlv",
        "APU starter motor": "apu strtr mtr",
        "cargo door hinge": "{s} cgo dr hinge",
        "passenger entry door seal": "{s} pax entry door seel",
        "cockpit windshield": "{s} windshld",
        "engine cowl latch": "cowl latch {s}",
        "engine fan blade": "fan blde {s}",
        "thrust reverser sleeve": "reverser slv {s}",
        "engine oil filter": "{s} oil filtr",
    },
    "audit": {
        "air conditioning pack valve": "the {s} air conditioning pack control valve",
        "cabin pressure controller": "the cabin pressure control unit",
        "generator control unit": "the generator control unit of Engine {s}",
        "main battery": "the aircraft main battery",
        "lavatory smoke detector": "the {s} lavatory smoke detection unit",
        "cargo fire detection loop": "the fire detection loop of the {s} cargo compartment",
        "aileron trim tab": "the trim tab of the {s} aileron",
        "elevator hinge bracket": "the {s} elevator hinge support bracket",
        "rudder power control unit": "the rudder power control unit (PCU)",
        "flap track fairing": "a {s} wing flap track fairing",
        "fuel quantity indicator": "the {s} tank fuel contents indicator",
        "fuel boost pump": "the {s} tank fuel boost pump",
        "engine driven hydraulic pump": "the engine-driven hydraulic pump of Engine {s}",
        "hydraulic reservoir": "the Hydraulic System {s} reservoir",
        "pitot probe heater": "the {s} pitot probe heater",
        "wing anti-ice valve": "the {s} wing anti-icing valve",
        "main landing gear actuator": "the {s} main landing gear retraction actuator",
        "nose wheel steering actuator": "the nose landing gear steering actuator",
        "brake assembly": "the {s} main wheel brake assembly",
        "main wheel tire": "a {s} main landing gear tire",
        "landing light": "the {s} landing light",
        "wingtip navigation light": "the {s} wingtip position light",
        "weather radar antenna": "the weather radar scanner antenna",
        "standby altimeter": "the standby altimeter",
        "crew oxygen mask": "the {s} flight crew oxygen mask",
        "engine bleed air valve": "the bleed air shutoff valve of Engine {s}",
        "APU starter motor": "the APU starter motor",
        "cargo door hinge": "a hinge of the {s} cargo door",
        "passenger entry door seal": "the seal of the {s} passenger entry door",
        "cockpit windshield": "the {s} flight deck windshield",
        "engine cowl latch": "a cowl latch on Engine {s}",
        "engine fan blade": "a fan blade of Engine {s}",
        "thrust reverser sleeve": "the thrust reverser translating sleeve of Engine {s}",
        "engine oil filter": "the oil filter of Engine {s}",
    },
    "planner": {
        "air conditioning pack valve": "{s} air cond pack valve",
        "cabin pressure controller": "cabin press controller",
        "generator control unit": "GCU on {s}",
        "main battery": "main aircraft battery",
        "lavatory smoke detector": "smoke detector in {s} lav",
        "cargo fire detection loop": "{s} cargo hold fire det loop",
        "aileron trim tab": "trim tab on {s} aileron",
        "elevator hinge bracket": "hinge bracket on {s} elevator",
        "rudder power control unit": "rudder PCU",
        "flap track fairing": "{s} flap track fairing",
        "fuel quantity indicator": "{s} fuel qty indicator",
        "fuel boost pump": "{s} boost pump",
        "engine driven hydraulic pump": "EDP on {s}",
        "hydraulic reservoir": "{s} hyd reservoir",
        "pitot probe heater": "{s} pitot heater",
        "wing anti-ice valve": "{s} wing anti-ice valve",
        "main landing gear actuator": "{s} main gear retraction actuator",
        "nose wheel steering actuator": "NLG steering actuator",
        "brake assembly": "{s} main wheel brake",
        "main wheel tire": "{s} main wheel tire assy",
        "landing light": "{s} landing light",
        "wingtip navigation light": "nav light on {s} wingtip",
        "weather radar antenna": "weather radar antenna",
        "standby altimeter": "standby altimeter",
        "crew oxygen mask": "{s} crew O2 mask",
        "engine bleed air valve": "bleed valve on {s}",
        "APU starter motor": "APU starter",
        "cargo door hinge": "{s} cargo door hinge",
        "passenger entry door seal": "{s} entry door seal",
        "cockpit windshield": "{s} windshield",
        "engine cowl latch": "cowl latches on {s}",
        "engine fan blade": "fan blade on {s}",
        "thrust reverser sleeve": "thrust reverser sleeve on {s}",
        "engine oil filter": "oil filter on {s}",
    },
    "british": {
        "air conditioning pack valve": "{s} air con pack flow valve",
        "cabin pressure controller": "cabin pressurisation controller",
        "generator control unit": "{s} GCU",
        "main battery": "aircraft main battery",
        "lavatory smoke detector": "smoke detector in the {s} toilet",
        "cargo fire detection loop": "{s} cargo hold fire wire loop",
        "aileron trim tab": "{s} aileron trim tab",
        "elevator hinge bracket": "{s} elevator hinge bracket",
        "rudder power control unit": "rudder power control unit",
        "flap track fairing": "{s} flap track fairing (canoe)",
        "fuel quantity indicator": "{s} fuel contents gauge",
        "fuel boost pump": "{s} fuel booster pump",
        "engine driven hydraulic pump": "engine-driven hydraulic pump on {s}",
        "hydraulic reservoir": "{s} hydraulic reservoir",
        "pitot probe heater": "{s} pitot head heater",
        "wing anti-ice valve": "{s} wing anti-icing valve",
        "main landing gear actuator": "{s} main undercarriage actuator",
        "nose wheel steering actuator": "nosewheel steering jack",
        "brake assembly": "{s} main wheel brake unit",
        "main wheel tire": "{s} main wheel tyre",
        "landing light": "{s} landing light",
        "wingtip navigation light": "{s} navigation light on the wingtip",
        "weather radar antenna": "weather radar scanner",
        "standby altimeter": "standby altimeter",
        "crew oxygen mask": "{s} crew oxygen mask",
        "engine bleed air valve": "{s} bleed air valve",
        "APU starter motor": "APU starter motor",
        "cargo door hinge": "{s} hold door hinge",
        "passenger entry door seal": "{s} passenger door seal",
        "cockpit windshield": "{s} flight deck windscreen",
        "engine cowl latch": "{s} cowling latch",
        "engine fan blade": "{s} fan blade",
        "thrust reverser sleeve": "{s} thrust reverser sleeve",
        "engine oil filter": "{s} oil filter",
    },
    "search": {
        "air conditioning pack valve": "aircon pack valve",
        "cabin pressure controller": "pressurization controller",
        "generator control unit": "gcu",
        "main battery": "main batt",
        "lavatory smoke detector": "lav smoke detector",
        "cargo fire detection loop": "cargo fire loop",
        "aileron trim tab": "aileron trim tab",
        "elevator hinge bracket": "elevator hinge bracket",
        "rudder power control unit": "rudder pcu",
        "flap track fairing": "flap track fairing",
        "fuel quantity indicator": "fuel qty indicator",
        "fuel boost pump": "boost pump",
        "engine driven hydraulic pump": "edp",
        "hydraulic reservoir": "hyd reservoir",
        "pitot probe heater": "pitot heater",
        "wing anti-ice valve": "wing anti-ice valve",
        "main landing gear actuator": "mlg actuator",
        "nose wheel steering actuator": "nws actuator",
        "brake assembly": "main brake",
        "main wheel tire": "mlg tire",
        "landing light": "landing light",
        "wingtip navigation light": "wingtip nav light",
        "weather radar antenna": "wx radar antenna",
        "standby altimeter": "standby altimeter",
        "crew oxygen mask": "crew o2 mask",
        "engine bleed air valve": "bleed valve",
        "APU starter motor": "apu starter",
        "cargo door hinge": "cargo door hinge",
        "passenger entry door seal": "entry door seal",
        "cockpit windshield": "windshield",
        "engine cowl latch": "cowl latch",
        "engine fan blade": "fan blade",
        "thrust reverser sleeve": "reverser sleeve",
        "engine oil filter": "oil filter",
    },
}

# Per form, the words put in place of "{s}" for each side of pipelines.synthetic.documents.
V7_SIDES: dict[str, dict[str, str]] = {
    "sms": {"left": "lft", "right": "rgt", "number 1": "eng1", "number 2": "eng2", "forward": "fwd", "aft": "aft",
            "captain side": "capt side", "first officer side": "fo side", "system A": "a", "system B": "b"},
    "audit": {"left": "left", "right": "right", "number 1": "No. 1", "number 2": "No. 2", "forward": "forward",
              "aft": "aft", "captain side": "Captain's side", "first officer side": "First Officer's side",
              "system A": "A", "system B": "B"},
    "planner": {"left": "left", "right": "right", "number 1": "No.1 eng", "number 2": "No.2 eng",
                "forward": "fwd", "aft": "aft", "captain side": "capt", "first officer side": "F/O",
                "system A": "sys A", "system B": "sys B"},
    "british": {"left": "port", "right": "stbd", "number 1": "No 1 engine", "number 2": "No 2 engine",
                "forward": "front", "aft": "rear", "captain side": "Capt's side",
                "first officer side": "F/O's side", "system A": "system A", "system B": "system B"},
    "search": {"left": "lh", "right": "rh", "number 1": "engine 1", "number 2": "engine 2", "forward": "fwd",
               "aft": "aft", "captain side": "capt", "first officer side": "fo", "system A": "system a",
               "system B": "system b"},
}

# What leaks, per form: by the component's fluid, or (for components without one) by the component itself.
V7_FLUIDS: dict[str, dict[str | None, str]] = {
    "sms": {"hydraulic fluid": "hyd", "fuel": "fuel", "engine oil": "oil"},
    "audit": {"hydraulic fluid": "hydraulic fluid", "fuel": "fuel", "engine oil": "engine oil"},
    "planner": {"hydraulic fluid": "hydraulic", "fuel": "fuel", "engine oil": "oil"},
    "british": {"hydraulic fluid": "hydraulic fluid", "fuel": "AVTUR", "engine oil": "engine oil"},
    "search": {"hydraulic fluid": "hyd", "fuel": "fuel", "engine oil": "oil"},
}
V7_GASES: dict[str, dict[str, str]] = {
    "sms": {"crew oxygen mask": "o2", "engine bleed air valve": "air", "passenger entry door seal": "air"},
    "audit": {"crew oxygen mask": "oxygen", "engine bleed air valve": "bleed air",
              "passenger entry door seal": "pressurised air"},
    "planner": {"crew oxygen mask": "oxygen", "engine bleed air valve": "bleed air",
                "passenger entry door seal": "air"},
    "british": {"crew oxygen mask": "oxygen", "engine bleed air valve": "bleed air",
                "passenger entry door seal": "cabin air"},
    "search": {"crew oxygen mask": "o2", "engine bleed air valve": "air", "passenger entry door seal": "air"},
}

# Per form and symptom, one or two templates ({p} the part with its side, {fluid} what leaks); which one is used
# is chosen by the hash too. "leak_gas" is used instead of "leak" for components without a fluid. The "search"
# form has keyword chunks instead (see v7_build).
V7_SYMPTOMS: dict[str, dict[str, tuple[str, ...]]] = {
    "sms": {
        "leak": ("got {fluid} running off {p}, bring rags n a seal kit",
                 "{p} leakin {fluid} again, grab me a drip tray"),
        "leak_gas": ("{p} leakin {fluid}, can hear it from here",),
        "crack": ("theres a crack on {p}, bring a torch n mirror", "{p} cracked, come look b4 we sign it off"),
        "corrosion": ("{p} got corrosion all over, u seen this?",),
        "chafing": ("wires chafed thru at {p}, copper showing, got any sleeve?",),
        "inoperative": ("{p} totally dead on test, swap it?", "{p} wont do nothin on test, stores got one?"),
        "intermittent": ("{p} cuttin out n back in, cant make it fail now",),
        "wear": ("{p} worn out way past limits, need a new one",),
        "loose": ("{p} fasteners loose, bring the torque wrench",),
        "noise": ("{p} real noisy on the run, come listen",),
        "vibration": ("{p} vibrating like crazy, check it w me",),
        "damage": ("{p} got damaged, looks like a tug hit it",),
        "overheat": ("{p} overheating again, smells hot, come see",),
        "low_pressure": ("pressure low on {p}, gauge way under, come have a look",),
        "low_voltage": ("{p} volts low, stickin it on the charger",),
        "delamination": ("{p} delamin8ing, bubbles up in the corner",),
        "contamination": ("metal in {p} again, bag it for the lab",),
    },
    "audit": {
        "leak": ("{fluid} leakage was observed at {p} and had not been recorded",
                 "It was noted during the audit that {p} was leaking {fluid}"),
        "leak_gas": ("Escape of {fluid} was detected at {p} during the audit",),
        "crack": ("A crack was identified in {p} and no defect entry had been raised",),
        "corrosion": ("Corrosion was observed on {p} without evidence of treatment",),
        "chafing": ("Chafed wiring was observed adjacent to {p}; the harness was not adequately protected",),
        "inoperative": ("{p} was found to be inoperative and had not been placarded",),
        "intermittent": ("Intermittent malfunction of {p} was reported and was not adequately investigated",),
        "wear": ("{p} was found worn in excess of the permitted limits",),
        "loose": ("Loose fasteners were observed on {p}; torque had not been verified",),
        "noise": ("An abnormal noise from {p} was reported and its investigation was not documented",),
        "vibration": ("Excessive vibration of {p} was reported; no troubleshooting record was located",),
        "damage": ("Damage to {p} was observed and had not been assessed against limits",),
        "overheat": ("An overheat condition of {p} was recorded without corrective action",),
        "low_pressure": ("Low pressure was indicated on {p} and no servicing was recorded",),
        "low_voltage": ("Low voltage was measured on {p}; capacity check records were not available",),
        "delamination": ("Delamination of {p} was observed and was not evaluated against limits",),
        "contamination": ("Metallic contamination was found in {p}; follow-up analysis was not documented",),
    },
    "planner": {
        "leak": ("previous {fluid} leak rectification on {p}: man-hours and seal kit part numbers",
                 "{fluid} leak at {p}, past work orders for labour estimate and parts"),
        "leak_gas": ("{fluid} leak repair history on {p}, man-hours and spares needed",),
        "crack": ("past replacements of cracked {p}, how long it took and which parts",),
        "corrosion": ("corrosion treatment on {p} done before, estimate man-hours and consumables",),
        "chafing": ("wiring chafe repair at {p}: previous task cards, labour hours, sleeving",),
        "inoperative": ("replacement of failed {p} (inop): past work orders, hours, part numbers",),
        "intermittent": ("intermittent {p} troubleshooting, how many hours did it take last time",),
        "wear": ("worn {p} change: previous labour hours and spares ordered",),
        "loose": ("re-torque of loose fasteners on {p}: past job hours and hardware",),
        "noise": ("noisy {p} previous rectification, man-hours and parts for planning",),
        "vibration": ("vibration on {p}: last fixes, time taken, parts used",),
        "damage": ("damaged {p} repair history for slot planning, hours and parts",),
        "overheat": ("{p} overheat: earlier work orders, parts and man-hours to plan",),
        "low_pressure": ("low pressure on {p}: past rectification jobs, time and materials",),
        "low_voltage": ("low voltage {p}: previous recharge and capacity test hours",),
        "delamination": ("delaminated {p} replacement: hangar time and parts from earlier jobs",),
        "contamination": ("metal found in {p}: past removals, labour and parts to plan",),
    },
    "british": {
        "leak": ("{fluid} leak from {p} outside AMM limits, defect raised in tech log",
                 "{p} leaking {fluid}, aircraft not released to service"),
        "leak_gas": ("{p} leaking {fluid}, defect entered in the tech log",),
        "crack": ("{p} found cracked, aircraft AOG pending replacement",),
        "corrosion": ("corrosion on {p}, white aluminium oxide, cleaned back and re-protected",),
        "chafing": ("wiring loom chafed at {p}, spiral wrap fitted as an interim",),
        "inoperative": ("{p} found unserviceable on functional check, not fit for flight",),
        "intermittent": ("{p} intermittent, fault could not be reproduced, monitor next sector",),
        "wear": ("{p} worn outside AMM limits, new one on order",),
        "loose": ("{p} found loose, fasteners not at torque, defect raised",),
        "noise": ("abnormal noise from {p} during functional check, investigation continuing",),
        "vibration": ("{p} vibrating excessively, carried forward to next check",),
        "damage": ("{p} damaged, spotted on the pre-departure check, assessment requested",),
        "overheat": ("{p} overheating, warning on flight deck, defect raised",),
        "low_pressure": ("{p} pressure low, below AMM minimum, further investigation required",),
        "low_voltage": ("{p} low voltage, put on charge in the battery bay",),
        "delamination": ("{p} delaminating, visible in the lower corner, aircraft AOG",),
        "contamination": ("metallic debris found in {p}, element to be analysed",),
    },
}

# The "search" form: one or two keywords per symptom (a leak adds its fluid when it still fits in six words).
V7_SEARCH_SYMPTOMS: dict[str, tuple[str, ...]] = {
    "leak": ("leak", "leaking"),
    "crack": ("cracked", "crack"),
    "corrosion": ("corroded", "corrosion"),
    "chafing": ("chafed wires", "wire chafe"),
    "inoperative": ("inop", "dead"),
    "intermittent": ("intermittent",),
    "wear": ("worn",),
    "loose": ("loose fasteners",),
    "noise": ("noisy", "noise"),
    "vibration": ("vibrating",),
    "damage": ("damaged",),
    "overheat": ("overheating", "overtemp"),
    "low_pressure": ("low pressure",),
    "low_voltage": ("low voltage",),
    "delamination": ("delam",),
    "contamination": ("metal particles",),
}


def _digest(finding) -> bytes:
    return hashlib.sha256(finding.key.encode("utf-8")).digest()


def v7_form(finding) -> str:
    """Which of FORMS a finding's query is written in (stable across runs and machines)."""
    return FORMS[_digest(finding)[0] % len(FORMS)]


def _search(finding, digest: bytes, fluid: str | None) -> str:
    """Three to six keywords in an order chosen by the hash: side, part, symptom (a leak's fluid unless named)."""
    side = V7_SIDES["search"][finding.side] if finding.side else ""
    part = V7_PARTS["search"][finding.component]
    options = V7_SEARCH_SYMPTOMS[finding.symptom]
    symptom = options[digest[2] % len(options)]
    if finding.symptom == "leak":
        leaks = V7_FLUIDS["search"][fluid] if fluid else V7_GASES["search"][finding.component]
        words = f"{side} {part}".split()
        if leaks not in words and len(words) + len(f"{leaks} {symptom}".split()) <= 6:
            symptom = f"{leaks} {symptom}"
    chunks = [c for c in (side, part, symptom) if c]
    orders = list(itertools.permutations(chunks))
    return " ".join(orders[digest[1] % len(orders)])


def v7_build(finding, form: str) -> str:
    """The query for a finding in a given form (v7_query uses the form its hash picks)."""
    from pipelines.synthetic.documents import COMPONENTS

    digest = _digest(finding)
    fluid = next(c[4] for c in COMPONENTS if c[1] == finding.component)
    if form == "search":
        return _search(finding, digest, fluid)
    symptom = "leak_gas" if finding.symptom == "leak" and not fluid else finding.symptom
    side = V7_SIDES[form][finding.side] if finding.side else ""
    part = " ".join(V7_PARTS[form][finding.component].format(s=side).split())
    leaks = V7_GASES[form][finding.component] if symptom == "leak_gas" else (V7_FLUIDS[form][fluid] if fluid else "")
    templates = V7_SYMPTOMS[form][symptom]
    query = templates[digest[1] % len(templates)].format(p=part, fluid=leaks)
    return query[0].upper() + query[1:] if form in ("audit", "british") else query


def v7_query(finding) -> str:
    """A query for a finding in the seventh held-out words above, its form chosen by a stable hash of its key."""
    return v7_build(finding, v7_form(finding))
