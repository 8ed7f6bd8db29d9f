"""Serve stage: ``qi serve``, a local web workspace on the audit store — runs, cases and their
traces for reviewers and inspectors, the handbook and a "try a change" bench for methodology
staff. Server-rendered, usable without JavaScript, built on every stage before it."""
