"""Guide↔customer links, exclusive-guide bindings, tags, channel codes and welcome messages."""
