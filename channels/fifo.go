package channels

// fifo is a growable ring buffer of messages.
type fifo struct {
	buf  [][]byte
	head int
	n    int
}

func (q *fifo) len() int { return q.n }

func (q *fifo) push(m []byte) {
	if q.n == len(q.buf) {
		q.resize(max(8, 2*len(q.buf)))
	}
	q.buf[(q.head+q.n)%len(q.buf)] = m
	q.n++
}

func (q *fifo) pop() []byte {
	m := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	if len(q.buf) > 64 && q.n < len(q.buf)/4 {
		q.resize(len(q.buf) / 2)
	}
	return m
}

func (q *fifo) clear() { *q = fifo{} }

func (q *fifo) resize(size int) {
	buf := make([][]byte, size)
	for i := range q.n {
		buf[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = buf, 0
}
