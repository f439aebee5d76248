"""Images decoded once and packed into a store on disk, read back in whole batches (the streamed path
for data that does not fit in memory)."""
