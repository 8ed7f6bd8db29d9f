"""Check: file formats as strict models, vocabulary checks, the framework, the rule language and
sample folders — everything that turns loaded data into validated inputs or diagnostics."""
