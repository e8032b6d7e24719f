"""The archive, the read models written by the reactions, and the queries behind the views."""
