"""The trainer service (`r1.trainer.v1.Trainer`, protos/r1/trainer/v1/trainer.proto)."""
