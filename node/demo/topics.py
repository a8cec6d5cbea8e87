"""Areas of expertise the synthetic records are built around, tagged with real vocabulary ids.

Each topic ties a plausible line of work (English text, keywords) to JRC knowledge domains,
sub-domains, sectors, technologies and use cases, ECSF roles, Art. 8(3) fields of activity, and
what a project or a facility in that area looks like. The first topic, post-quantum cryptography
for energy grids, anchors the demo's first search: every node's first organisation works on it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    key: str
    activity: str  # "works on …" (English)
    keywords: tuple[str, ...]
    subdomains: tuple[str, ...]
    sectors: tuple[str, ...]
    technologies: tuple[str, ...]
    use_cases: tuple[str, ...]
    roles: tuple[str, ...]
    fields: tuple[str, ...]
    project_titles: tuple[str, ...]
    acronyms: tuple[str, ...]
    capabilities: tuple[str, ...]

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.split(".")[0] for s in self.subdomains))


TOPICS: tuple[Topic, ...] = (
    Topic("pqc", "post-quantum cryptography and crypto-agile key management for energy grid control networks",
          ("post-quantum", "crypto-agility", "PKI", "smart grid"),
          ("cry.10", "cry.03", "cry.01"), ("sec.energy", "sec.financial"),
          ("tech.quantum-technologies-e-g-computing-and-communication", "tech.industrial-iot-and-control-systems"),
          ("uc.critical-infrastructure-protection-cip",), ("ecsf.researcher", "ecsf.architect"),
          ("foa.academia-research-innovation", "foa.industrial-product-development"),
          ("Quantum-safe communication for European energy grids", "Post-quantum migration of substation automation"),
          ("QUANTÉNERGIE", "PQ-GRID", "KRYPTONET"),
          ("Post-quantum TLS interoperability testing", "IEC 61850 protocol test bench")),
    Topic("ot", "security of industrial control systems, SCADA and operational technology in substations and plants",
          ("SCADA", "OT security", "IEC 62443", "ICS"),
          ("nds.09", "nds.08", "shse.18"), ("sec.energy", "sec.manufacturing-and-supply-chains", "sec.chemical"),
          ("tech.industrial-iot-and-control-systems",), ("uc.critical-infrastructure-protection-cip",),
          ("ecsf.architect", "ecsf.penetration-tester"), ("foa.industrial-product-development",),
          ("Resilient operational technology for process industries", "Cyber-physical security of smart factories"),
          ("OT-SHIELD", "FABRIKSCHUTZ", "RESILIANT"),
          ("ICS/SCADA incident-response exercises", "PLC firmware analysis lab")),
    Topic("csirt", "incident response, a sectoral CSIRT and coordinated vulnerability disclosure",
          ("CSIRT", "incident response", "SOC", "vulnerability disclosure"),
          ("ihdf.06", "ihdf.03", "ihdf.10"), ("sec.government", "sec.telecomm-infrastructure"),
          ("tech.information-systems",), ("uc.disaster-resilience-and-crisis-management",),
          ("ecsf.incident-responder", "ecsf.cti-specialist"), ("foa.infosec-incident-response-operations",),
          ("Cross-border security operations centres network", "Federated incident information sharing"),
          ("SOC-LINK", "CERTNET", "ALERTE"),
          ("Malware detonation sandbox", "SOC analyst training environment")),
    Topic("forensics", "digital forensics, malware analysis and support to cybercrime investigations",
          ("digital forensics", "malware", "evidence", "cybercrime"),
          ("ihdf.09", "ihdf.01", "la.04"), ("sec.safety-and-security", "sec.government"),
          ("tech.mobile-devices", "tech.operating-systems"), ("uc.fight-against-crime-and-terrorism",),
          ("ecsf.digital-forensics-investigator",), ("foa.infosec-incident-response-operations",),
          ("Forensic readiness for law enforcement agencies", "Mobile device evidence at scale"),
          ("FORENSIK", "EVIDENCIA", "TRACER"),
          ("Mobile forensics laboratory", "Memory forensics training cases")),
    Topic("health", "penetration testing of medical IoT devices and hospital networks",
          ("medical devices", "hospital", "penetration testing", "IoT"),
          ("shse.20", "nds.08", "shse.01"), ("sec.health",),
          ("tech.internet-of-things-embedded-systems-pervasive-systems",), ("uc.protection-of-public-spaces",),
          ("ecsf.penetration-tester", "ecsf.researcher"), ("foa.industrial-product-development",),
          ("Secure connected medical devices", "Cyber resilience of European hospitals"),
          ("MEDISAFE", "SANITAS-CYBER", "HOSPISHIELD"),
          ("Medical device security testing", "Hospital network digital twin")),
    Topic("range", "cyber ranges, capture-the-flag exercises and professional training for operators",
          ("cyber range", "CTF", "training", "exercise"),
          ("eat.01", "eat.05", "eat.04"), ("sec.government", "sec.energy"),
          ("tech.cloud-edge-and-virtualisation",), ("uc.disaster-resilience-and-crisis-management",),
          ("ecsf.educator",), ("foa.training-education",),
          ("European cyber skills academy network", "Federated cyber ranges for crisis exercises"),
          ("SKILLS4CYBER", "RANGEFED", "ÉDUCYBER"),
          ("Red/blue team training", "Capture-the-flag platform")),
    Topic("eid", "electronic identity, trust services and privacy-preserving authentication",
          ("eID", "eIDAS", "trust services", "authentication"),
          ("iam.02", "iam.07", "iam.06", "cry.04"), ("sec.government", "sec.digital-services-and-platforms"),
          ("tech.information-systems", "tech.mobile-devices"), ("uc.border-and-external-security",),
          ("ecsf.architect", "ecsf.legal-policy-compliance-officer"), ("foa.standardisation-specifications",),
          ("European digital identity wallet pilots", "Privacy-preserving credentials for public services"),
          ("IDWALLET", "TRUSTID", "ÉIDENTITÉ"),
          ("eIDAS conformance test suite", "Wallet interoperability lab")),
    Topic("privacy", "privacy engineering, data protection by design and anonymisation",
          ("privacy", "GDPR", "anonymisation", "PET"),
          ("dsp.07", "dsp.01", "shse.07", "dsp.09"), ("sec.digital-services-and-platforms", "sec.health"),
          ("tech.big-data",), (),
          ("ecsf.legal-policy-compliance-officer", "ecsf.researcher"), ("foa.ethics", "foa.academia-research-innovation"),
          ("Privacy-enhancing technologies for health data spaces", "Trustworthy data sharing"),
          ("PRIVASPACE", "DATENSCHUTZ-X", "ANONYMA"),
          ("Re-identification risk assessment service",)),
    Topic("ai", "security of machine-learning systems and AI for threat detection",
          ("AI security", "adversarial machine learning", "anomaly detection"),
          ("smg.02", "tma.01", "shse.04"), ("sec.financial", "sec.digital-services-and-platforms"),
          ("tech.artificial-intelligence", "tech.big-data"), ("uc.fight-against-crime-and-terrorism",),
          ("ecsf.researcher", "ecsf.cti-specialist"), ("foa.academia-research-innovation",),
          ("Robust AI for network intrusion detection", "Auditable machine learning in finance"),
          ("AI-GUARD", "ROBUSTML", "KIWACHT"),
          ("Adversarial ML evaluation platform",)),
    Topic("space", "security of satellite links, ground segments and space-based services",
          ("satellite", "ground segment", "space security"),
          ("nds.09", "cry.14", "shse.12"), ("sec.space", "sec.defense"),
          ("tech.satellite-systems-and-applications",), ("uc.local-wide-area-observation-and-surveillance",),
          ("ecsf.architect", "ecsf.risk-manager"), ("foa.industrial-product-development",),
          ("Secure satellite communication for government services", "Ground segment cyber resilience"),
          ("ORBITSEC", "SATSHIELD", "ÉTOILE"),
          ("Satellite link emulation", "Ground station security testbed")),
    Topic("cert", "security evaluation and certification of ICT products under the EU certification framework",
          ("certification", "Common Criteria", "EUCC", "evaluation"),
          ("aac.04", "aac.01", "smg.13", "shse.18"), ("sec.digital-services-and-platforms", "sec.telecomm-infrastructure"),
          ("tech.hardware-technology-rfid-chips-sensors-networking-etc",), (),
          ("ecsf.auditor", "ecsf.risk-manager"), ("foa.standardisation-specifications",),
          ("Harmonised evaluation methods for EU cybersecurity certification", "Certification of 5G equipment"),
          ("EUCC-PLUS", "CERTIFY", "ÉVALUE"),
          ("Common Criteria evaluation laboratory", "Side-channel analysis bench")),
    Topic("cti", "threat intelligence, attack modelling and risk management for public administrations",
          ("threat intelligence", "risk management", "MISP", "ATT&CK"),
          ("smg.15", "smg.12", "sm.02"), ("sec.government", "sec.financial"),
          ("tech.information-systems",), ("uc.fight-against-crime-and-terrorism",),
          ("ecsf.cti-specialist", "ecsf.risk-manager", "ecsf.ciso"), ("foa.infosec-incident-response-operations",),
          ("Cyber threat intelligence sharing platform", "Risk-based security for municipalities"),
          ("THREATSHARE", "MUNIRISK", "VIGILANCE"),
          ("Threat intelligence sharing sandbox",)),
    Topic("cloud", "cloud and edge security, confidential computing and secure virtualisation",
          ("cloud security", "confidential computing", "Kubernetes", "edge"),
          ("nds.02", "shse.12", "tma.11"), ("sec.digital-services-and-platforms", "sec.telecomm-infrastructure"),
          ("tech.cloud-edge-and-virtualisation", "tech.high-performance-computing-hpc"), (),
          ("ecsf.implementer", "ecsf.architect"), ("foa.industrial-product-development",),
          ("Sovereign and secure cloud-edge continuum", "Confidential computing for public services"),
          ("EDGESEC", "CLOUDSHIELD", "SOUVERAIN"),
          ("Confidential computing test cluster",)),
    Topic("auto", "automotive and railway cybersecurity, secure over-the-air updates",
          ("automotive", "railway", "UN R155", "over-the-air updates"),
          ("shse.02", "shse.18", "nds.09"), ("sec.transportation",),
          ("tech.vehicular-systems-e-g-autonomous-vehicles", "tech.internet-of-things-embedded-systems-pervasive-systems"),
          ("uc.critical-infrastructure-protection-cip",), ("ecsf.penetration-tester", "ecsf.implementer"),
          ("foa.industrial-product-development",),
          ("Cyber-secure connected and automated mobility", "Railway signalling security"),
          ("AUTOSAFE", "RAILSHIELD", "MOBILSECUR"),
          ("Vehicle network test bench", "Railway signalling testbed")),
)
