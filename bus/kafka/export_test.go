package kafka

// ReadFeeds returns how many shared partition feeds the bus has, how many
// readers they have in all, and how many stopped feeds may still be running.
func (b *Bus) ReadFeeds() (shared, readers, retired int) {
	b.readMu.Lock()
	defer b.readMu.Unlock()
	for _, f := range b.feeds {
		readers += f.refs
	}
	return len(b.feeds), readers, len(b.retired)
}
