"""Data service rules (the orchestrator's database, the vector database).

No rule yet: the plans hold no RDS instance or vector-database volume to mutate, and every rule of the pack
needs a compliant and a non-compliant case built from a recorded resource. Planned once those land: storage
encryption, deletion protection and Multi-AZ in staging and prod, backups, no public access, final snapshot.
"""
