"""LightningDataModules, one per dataset family. Each exposes a `DataSpec` as `dm.spec`."""
