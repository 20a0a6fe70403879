package engine

import (
	"encoding/binary"
	"fmt"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// Version 3 stores what the fold needs and no more. A record is, in order
// (numbers are varints, zigzag when they may be negative; strings are a
// length and bytes):
//
//	3, state flags (stateHas...)
//	recordId, appKey, roomId, sessionId, userId, mode, extra
//	tsBase: RC's clock that the other RC timestamps are stored against
//	firstSeenAt, lastEventAt-firstSeenAt (the server clock)
//	file names, sorted: count, then per name the length it shares with
//	  the previous one and the rest (RC's names share long prefixes; the
//	  first shares with sessionId_roomId_userId_, nameBase)
//	metaFrom, startFrom (unless it equals metaFrom, as it does when the
//	  start callback gave both), config, audioSample, videoResolution,
//	  endedAt, endReceivedAt, lastErrorFrom, lastError: each only when
//	  present, the RC timestamps against tsBase
//	per file, in name order: file flags, firstSeenAt, kind, sizeFrom,
//	  size, uploadFrom, url (its parts around the file's name, or "like
//	  the file before"), uploadedAt (against uploadFrom's timestamp)
//	firstSeq, event count, per event the seq's step from the one before
//	  and the 8 identity bytes, then the duplicate flags as a bitmap
//
// A chosen callback's key (rc.Key) is stored as a flags byte (keyFlags)
// and its timestamp's offset from tsBase: its appKey and recordId only when
// they differ from the recording's, its file name as "the file this key
// belongs to", an index into the names, or the name itself.
const (
	stateHasMeta = 1 << iota
	stateHasStart
	stateHasConfig
	stateHasEndedAt
	stateHasEndReceivedAt
	stateFailed
	stateHasLastErrorFrom
	stateHasLastError
	stateHasFiles    // Files is not nil (it may be empty)
	stateHasEvents   // Events is not nil (it may be empty)
	stateStartIsMeta // StartFrom equals MetaFrom (the start callback gave both) and is not stored again
	stateFlagsEnd
)

// keyFlags: bits 0-1 say which strings differ from the recording's, bits
// 2-3 how the file name is stored, bit 4 a code of 200, bits 5-7 a type of
// 0-6 plus one (0: the type follows as a number).
const (
	keyOwnAppKey   = 1 << 0
	keyOwnRecordID = 1 << 1
	keyNameShift   = 2
	keyCode200     = 1 << 4
	keyTypeShift   = 5
)

// How a key's file name is stored (keyFlags bits 2-3).
const (
	nameEmpty   = 0 // ""
	nameOwnFile = 1 // the name of the file whose key it is
	nameIndexed = 2 // an index into the record's file names follows
	nameLiteral = 3 // the name follows
)

// fileFlags: bits 0-2 the kind (fileKinds, or kindLiteral), then presence.
const (
	kindLiteral       = 4
	fileKindMask      = 7
	fileHasSizeFrom   = 1 << 3
	fileHasSize       = 1 << 4
	fileHasUploadFrom = 1 << 5
	fileHasUploadedAt = 1 << 6
	fileUploadFailed  = 1 << 7
)

var fileKinds = [...]ledger.FileKind{"", ledger.KindFinal, ledger.KindSegment, ledger.KindUnknown}

// How a file's URL is stored.
const (
	urlEmpty    = 0
	urlLiteral  = 1 // the URL follows
	urlWithName = 2 // what comes before and after the file's name follow
	urlLikePrev = 3 // the name between what came before and after it in the previous urlWithName
)

// nameBase is what the first file name shares its prefix with: RC names
// files sessionId_roomId[_userId]_timestamp.format (rc.FileName).
func nameBase(s *ledger.State) string {
	if s.UserID == "" {
		return s.SessionID + "_" + s.RoomID + "_"
	}
	return s.SessionID + "_" + s.RoomID + "_" + s.UserID + "_"
}

// keyScope is what a key is stored against.
type keyScope struct {
	appKey, recordID string
	tsBase           int64
	names            []string
	own              int // index of the file the key belongs to, or -1

	// urlBefore and urlAfter are the last urlWithName's parts: a
	// recording's files are usually all uploaded to one place.
	urlBefore, urlAfter string
	urlSeen             bool
}

func encodeV3(r *Record) []byte {
	s := &r.State
	w := writer{b: make([]byte, 0, 256)}
	w.b = append(w.b, recordV3)
	var flags uint64
	for _, f := range []struct {
		on  bool
		bit uint64
	}{
		{s.MetaFrom != nil, stateHasMeta}, {s.StartFrom != nil, stateHasStart}, {s.Config != nil, stateHasConfig},
		{s.EndedAt != nil, stateHasEndedAt}, {s.EndReceivedAt != nil, stateHasEndReceivedAt}, {s.Failed, stateFailed},
		{s.LastErrorFrom != nil, stateHasLastErrorFrom}, {s.LastError != nil, stateHasLastError},
		{s.Files != nil, stateHasFiles}, {r.Events != nil, stateHasEvents},
		{s.StartFrom != nil && s.MetaFrom != nil && *s.StartFrom == *s.MetaFrom, stateStartIsMeta},
	} {
		if f.on {
			flags |= f.bit
		}
	}
	w.uvarint(flags)
	w.str(s.RecordID)
	w.str(s.AppKey)
	w.str(s.RoomID)
	w.str(s.SessionID)
	w.str(s.UserID)
	w.varint(int64(s.Mode))
	w.str(s.Extra)
	var tsBase int64
	if s.MetaFrom != nil {
		tsBase = s.MetaFrom.Timestamp
	}
	w.varint(tsBase)
	w.varint(s.FirstSeenAt)
	w.varint(s.LastEventAt - s.FirstSeenAt)

	names := sortedNames(s.Files)
	if s.Files != nil {
		w.uvarint(uint64(len(names)))
		prev := nameBase(s)
		for _, n := range names {
			p := sharedPrefix(prev, n)
			w.uvarint(uint64(p))
			w.str(n[p:])
			prev = n
		}
	}
	sc := keyScope{appKey: s.AppKey, recordID: s.RecordID, tsBase: tsBase, names: names, own: -1}
	if s.MetaFrom != nil {
		w.key(*s.MetaFrom, &sc)
	}
	if s.StartFrom != nil && flags&stateStartIsMeta == 0 {
		w.key(*s.StartFrom, &sc)
	}
	if c := s.Config; c != nil {
		w.varint(int64(c.Trigger))
		w.varint(int64(c.MixLayout))
		w.varint(int64(c.SlicesMin))
		w.str(c.AudioFormat)
		w.str(c.VideoFormat)
	}
	w.varint(int64(s.AudioSample))
	w.str(s.VideoResolution)
	if s.EndedAt != nil {
		w.varint(*s.EndedAt - tsBase)
	}
	if s.EndReceivedAt != nil {
		w.varint(*s.EndReceivedAt - s.FirstSeenAt)
	}
	if s.LastErrorFrom != nil {
		w.key(*s.LastErrorFrom, &sc)
	}
	if e := s.LastError; e != nil {
		w.varint(int64(e.Code))
		w.str(e.Message)
		w.varint(e.At - tsBase)
	}
	for i, n := range names {
		sc.own = i
		w.file(n, s.Files[n], s.FirstSeenAt, &sc)
	}

	w.varint(r.FirstSeq)
	if r.Events != nil {
		w.uvarint(uint64(len(r.Events)))
		prev := r.FirstSeq
		for _, e := range r.Events {
			w.varint(e.Seq - prev)
			w.b = binary.BigEndian.AppendUint64(w.b, e.Identity)
			prev = e.Seq
		}
		dups := make([]byte, (len(r.Events)+7)/8)
		for i, e := range r.Events {
			if e.Duplicate {
				dups[i/8] |= 1 << (i % 8)
			}
		}
		w.b = append(w.b, dups...)
	}
	return w.b
}

func (w *writer) file(name string, f ledger.FileState, stateFirstSeen int64, sc *keyScope) {
	flags := byte(kindLiteral)
	for i, k := range fileKinds {
		if f.Kind == k {
			flags = byte(i)
		}
	}
	for _, b := range []struct {
		on  bool
		bit byte
	}{
		{f.SizeFrom != nil, fileHasSizeFrom}, {f.Size != nil, fileHasSize}, {f.UploadFrom != nil, fileHasUploadFrom},
		{f.UploadedAt != nil, fileHasUploadedAt}, {f.UploadFailed, fileUploadFailed},
	} {
		if b.on {
			flags |= b.bit
		}
	}
	w.b = append(w.b, flags)
	w.varint(f.FirstSeenAt - stateFirstSeen)
	if flags&fileKindMask == kindLiteral {
		w.str(string(f.Kind))
	}
	if f.SizeFrom != nil {
		w.key(*f.SizeFrom, sc)
	}
	if f.Size != nil {
		w.varint(*f.Size)
	}
	uploadBase := sc.tsBase
	if f.UploadFrom != nil {
		w.key(*f.UploadFrom, sc)
		uploadBase = f.UploadFrom.Timestamp
	}
	if before, after, ok := splitURL(f.URL, name); ok && sc.urlSeen && before == sc.urlBefore && after == sc.urlAfter {
		w.uvarint(urlLikePrev)
	} else if ok {
		w.uvarint(urlWithName)
		w.str(before)
		w.str(after)
		sc.urlBefore, sc.urlAfter, sc.urlSeen = before, after, true
	} else if f.URL == "" {
		w.uvarint(urlEmpty)
	} else {
		w.uvarint(urlLiteral)
		w.str(f.URL)
	}
	if f.UploadedAt != nil {
		w.varint(*f.UploadedAt - uploadBase) // Apply sets it to the upload's timestamp: 0
	}
}

func (w *writer) key(k rc.Key, sc *keyScope) {
	var flags byte
	if k.AppKey != sc.appKey {
		flags |= keyOwnAppKey
	}
	if k.RecordID != sc.recordID {
		flags |= keyOwnRecordID
	}
	index := -1
	switch {
	case k.FileName == "":
		flags |= nameEmpty << keyNameShift
	case sc.own >= 0 && k.FileName == sc.names[sc.own]:
		flags |= nameOwnFile << keyNameShift
	default:
		if index = nameIndex(sc.names, k.FileName); index >= 0 {
			flags |= nameIndexed << keyNameShift
		} else {
			flags |= nameLiteral << keyNameShift
		}
	}
	if k.Code == rc.StatusOK {
		flags |= keyCode200
	}
	if k.Type >= 0 && k.Type <= 6 {
		flags |= byte(k.Type+1) << keyTypeShift
	}
	w.b = append(w.b, flags)
	if flags&keyOwnAppKey != 0 {
		w.str(k.AppKey)
	}
	if flags&keyOwnRecordID != 0 {
		w.str(k.RecordID)
	}
	switch (flags >> keyNameShift) & 3 {
	case nameIndexed:
		w.uvarint(uint64(index))
	case nameLiteral:
		w.str(k.FileName)
	}
	if flags&keyCode200 == 0 {
		w.varint(int64(k.Code))
	}
	if flags>>keyTypeShift == 0 {
		w.varint(int64(k.Type))
	}
	w.varint(k.Timestamp - sc.tsBase)
}

// writer appends the parts of an encoding.
type writer struct{ b []byte }

func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *writer) str(s string)     { w.uvarint(uint64(len(s))); w.b = append(w.b, s...) }

// decodeV3 reads version 3, and version 4 (announced: what the recording
// announced follows).
func decodeV3(b []byte, announced bool) (Record, error) {
	rd := reader{b: b, all: string(b)}
	var r Record
	s := &r.State
	flags := rd.uvarint()
	if flags >= stateFlagsEnd {
		rd.fail("unknown state flags")
	}
	s.RecordID = rd.str()
	s.AppKey = rd.str()
	s.RoomID = rd.str()
	s.SessionID = rd.str()
	s.UserID = rd.str()
	s.Mode = rc.Mode(rd.varint())
	s.Extra = rd.str()
	tsBase := rd.varint()
	s.FirstSeenAt = rd.varint()
	s.LastEventAt = s.FirstSeenAt + rd.varint()

	var names []string
	if flags&stateHasFiles != 0 {
		n := rd.count(2) // a name takes at least its prefix and length
		names = make([]string, 0, n)
		prev := nameBase(s)
		for range n {
			p := rd.uvarint()
			if p > uint64(len(prev)) {
				rd.fail("file name prefix longer than the previous name")
				break
			}
			name := prev[:p] + rd.str()
			if len(names) > 0 && name <= prev {
				rd.fail("file names out of order")
			}
			if rd.err != nil {
				break
			}
			names = append(names, name)
			prev = name
		}
	}
	sc := keyScope{appKey: s.AppKey, recordID: s.RecordID, tsBase: tsBase, names: names, own: -1}
	if flags&stateHasMeta != 0 {
		s.MetaFrom = rd.key(&sc)
	}
	switch {
	case flags&stateStartIsMeta != 0:
		if flags&stateHasMeta == 0 || flags&stateHasStart == 0 {
			rd.fail("start key said to be the meta key without both")
			break
		}
		start := *s.MetaFrom
		s.StartFrom = &start
	case flags&stateHasStart != 0:
		s.StartFrom = rd.key(&sc)
	}
	if flags&stateHasConfig != 0 {
		s.Config = &rc.Config{Trigger: int(rd.varint()), MixLayout: int(rd.varint()), SlicesMin: int(rd.varint())}
		s.Config.AudioFormat = rd.str()
		s.Config.VideoFormat = rd.str()
	}
	s.AudioSample = int(rd.varint())
	s.VideoResolution = rd.str()
	if flags&stateHasEndedAt != 0 {
		s.EndedAt = ptr(tsBase + rd.varint())
	}
	if flags&stateHasEndReceivedAt != 0 {
		s.EndReceivedAt = ptr(s.FirstSeenAt + rd.varint())
	}
	s.Failed = flags&stateFailed != 0
	if flags&stateHasLastErrorFrom != 0 {
		s.LastErrorFrom = rd.key(&sc)
	}
	if flags&stateHasLastError != 0 {
		e := &ledger.ErrorInfo{Code: int(rd.varint())}
		e.Message = rd.str()
		e.At = tsBase + rd.varint()
		s.LastError = e
	}
	if names != nil {
		s.Files = make(map[string]ledger.FileState, len(names))
		for i, n := range names {
			sc.own = i
			s.Files[n] = rd.file(n, s.FirstSeenAt, &sc)
		}
	}

	r.FirstSeq = rd.varint()
	if flags&stateHasEvents != 0 {
		n := rd.count(9) // a step of at least a byte and 8 identity bytes
		r.Events = make([]EventRef, n)
		prev := r.FirstSeq
		for i := range r.Events {
			prev += rd.varint()
			r.Events[i] = EventRef{Seq: prev, Identity: rd.uint64()}
		}
		dups := rd.take((n + 7) / 8)
		for i := range r.Events {
			r.Events[i].Duplicate = dups != nil && dups[i/8]&(1<<(i%8)) != 0
		}
		if n%8 != 0 && dups != nil && dups[len(dups)-1]>>(n%8) != 0 {
			rd.fail("duplicate flags past the last event")
		}
	}
	if announced && rd.err == nil {
		a, n, err := delivery.ParseAnnounced(rd.b, s)
		if err != nil {
			rd.fail(err.Error())
		}
		r.Announced, rd.b = a, rd.b[n:]
	}
	if rd.err == nil && len(rd.b) > 0 {
		rd.fail(fmt.Sprintf("%d bytes past the end", len(rd.b)))
	}
	if rd.err != nil {
		return Record{}, rd.err
	}
	return r, nil
}

func (rd *reader) file(name string, stateFirstSeen int64, sc *keyScope) ledger.FileState {
	flags := rd.byte()
	var f ledger.FileState
	f.FirstSeenAt = stateFirstSeen + rd.varint()
	switch k := flags & fileKindMask; {
	case k == kindLiteral:
		f.Kind = ledger.FileKind(rd.str())
	case int(k) < len(fileKinds):
		f.Kind = fileKinds[k]
	default:
		rd.fail("unknown file kind")
	}
	if flags&fileHasSizeFrom != 0 {
		f.SizeFrom = rd.key(sc)
	}
	if flags&fileHasSize != 0 {
		f.Size = ptr(rd.varint())
	}
	uploadBase := sc.tsBase
	if flags&fileHasUploadFrom != 0 {
		f.UploadFrom = rd.key(sc)
		uploadBase = f.UploadFrom.Timestamp
	}
	switch rd.uvarint() {
	case urlEmpty:
	case urlLiteral:
		f.URL = rd.str()
	case urlWithName:
		sc.urlBefore = rd.str()
		sc.urlAfter = rd.str()
		sc.urlSeen = true
		f.URL = sc.urlBefore + name + sc.urlAfter
	case urlLikePrev:
		if !sc.urlSeen {
			rd.fail("url like a previous one that is not there")
			break
		}
		f.URL = sc.urlBefore + name + sc.urlAfter
	default:
		rd.fail("unknown url form")
	}
	if flags&fileHasUploadedAt != 0 {
		f.UploadedAt = ptr(uploadBase + rd.varint())
	}
	f.UploadFailed = flags&fileUploadFailed != 0
	return f
}

func (rd *reader) key(sc *keyScope) *rc.Key {
	flags := rd.byte()
	k := rc.Key{AppKey: sc.appKey, RecordID: sc.recordID}
	if flags&keyOwnAppKey != 0 {
		k.AppKey = rd.str()
	}
	if flags&keyOwnRecordID != 0 {
		k.RecordID = rd.str()
	}
	switch (flags >> keyNameShift) & 3 {
	case nameOwnFile:
		if sc.own < 0 {
			rd.fail("own file name outside a file")
			break
		}
		k.FileName = sc.names[sc.own]
	case nameIndexed:
		if i := rd.uvarint(); i < uint64(len(sc.names)) {
			k.FileName = sc.names[i]
		} else {
			rd.fail("file name index out of range")
		}
	case nameLiteral:
		k.FileName = rd.str()
	}
	k.Code = rc.StatusOK
	if flags&keyCode200 == 0 {
		k.Code = int(rd.varint())
	}
	if t := flags >> keyTypeShift; t != 0 {
		k.Type = rc.Type(t - 1)
	} else {
		k.Type = rc.Type(rd.varint())
	}
	k.Timestamp = sc.tsBase + rd.varint()
	return &k
}

// reader takes the parts of an encoding; the first error sticks and the
// reads after it return zero values.
type reader struct {
	b   []byte
	all string // b as read first, copied once: the strings read are parts of it
	err error
}

func (rd *reader) fail(what string) {
	if rd.err == nil {
		rd.err = fmt.Errorf("%s: %w", what, ErrBadRecord)
	}
	rd.b = nil
}

func (rd *reader) uvarint() uint64 {
	v, n := binary.Uvarint(rd.b)
	if n <= 0 {
		rd.fail("truncated number")
		return 0
	}
	rd.b = rd.b[n:]
	return v
}

func (rd *reader) varint() int64 {
	v, n := binary.Varint(rd.b)
	if n <= 0 {
		rd.fail("truncated number")
		return 0
	}
	rd.b = rd.b[n:]
	return v
}

// take returns the next n bytes, or nil.
func (rd *reader) take(n int) []byte {
	if n > len(rd.b) {
		rd.fail("truncated")
		return nil
	}
	p := rd.b[:n]
	rd.b = rd.b[n:]
	return p
}

func (rd *reader) byte() byte {
	if p := rd.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (rd *reader) uint64() uint64 {
	if p := rd.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (rd *reader) str() string {
	n := rd.uvarint()
	if n > uint64(len(rd.b)) {
		rd.fail("truncated string")
		return ""
	}
	at := len(rd.all) - len(rd.b)
	rd.b = rd.b[n:]
	return rd.all[at : at+int(n)]
}

// count reads a number of items that each take at least least bytes: a
// count the remaining bytes cannot hold is refused before anything is
// allocated for it.
func (rd *reader) count(least int) int {
	n := rd.uvarint()
	if n > uint64(len(rd.b)/least) {
		rd.fail("count larger than the record")
		return 0
	}
	return int(n)
}

func ptr[T any](v T) *T { return &v }
