"""The deployer: validation gate, zero-downtime publication to Triton, post-deploy watch, rollback."""
