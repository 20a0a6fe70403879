package rc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/recledger/recledger/rc"
)

func ExampleParse() {
	body := []byte(`{"timestamp":1530027865231,"type":4,"appKey":"your_appkey",
		"recordId":"8329208b99410743dcfeb80548e2c0ec","roomId":"111",
		"sessionId":"lSA2G6CUf9A-6nnoNwXCx8","userId":"222","mode":"1","code":200,
		"output":{"fileName":"lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4",
		"fileUrl":"http://oss/record/XXXXXXXX.mp4?abc"}}`)
	cb, err := rc.Parse(body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cb.Type, cb.Mode, cb.OK(), cb.Output.FileURL)
	for _, w := range cb.Warnings {
		fmt.Println("warning:", w)
	}

	_, err = rc.Parse([]byte(`{"type":1,"appKey":"your_appkey"}`))
	var fe *rc.FieldError
	if errors.As(err, &fe) && errors.Is(err, rc.ErrMissingField) {
		fmt.Println("missing:", fe.Field)
	}
	// Output:
	// upload single-video true http://oss/record/XXXXXXXX.mp4?abc
	// warning: mode: number sent as a string
	// missing: recordId
}

func ExampleSign() {
	fmt.Println(rc.Sign("Y1W2MeFwwwRxa0", "14314", "1408710653000"))
	// Output: 30be0bbca9c9b2e27578701e9fda2358a814c88f
}

func ExampleVerifier_Verify() {
	v, err := rc.NewVerifier(rc.VerifierConfig{
		Apps: map[string][]string{"your_appkey": {"Y1W2MeFwwwRxa0"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	body := []byte(`{"type":1,"appKey":"your_appkey","recordId":"r1"}`)

	// What RC sends: a fresh nonce, the time and the signature in headers.
	req := httptest.NewRequest(http.MethodPost, "/v1/callbacks/recording", bytes.NewReader(body))
	signer := rc.Signer{AppKey: "your_appkey", Secret: "Y1W2MeFwwwRxa0"}
	signer.Apply(req, signer.Sign())

	app, err := v.Verify(req, body)
	fmt.Println(app, err)

	// The same signature with another body is a replay.
	forged := []byte(`{"type":3,"appKey":"your_appkey","recordId":"r1"}`)
	_, err = v.Verify(req, forged)
	fmt.Println(errors.Is(err, rc.ErrReplayed), rc.StatusCode(err))

	// An old capture is refused too.
	old := httptest.NewRequest(http.MethodPost, "/", nil)
	oldSigner := signer
	oldSigner.Now = func() time.Time { return time.Now().Add(-time.Hour) }
	oldSigner.Apply(old, oldSigner.Sign())
	_, err = v.Verify(old, body)
	fmt.Println(errors.Is(err, rc.ErrExpired))
	// Output:
	// your_appkey <nil>
	// true 401
	// true
}

func ExampleHandler() {
	v, err := rc.NewVerifier(rc.VerifierConfig{
		Apps: map[string][]string{"your_appkey": {"Y1W2MeFwwwRxa0"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	h := rc.Handler(v, func(ctx context.Context, cb rc.Callback) error {
		// Store cb durably before returning nil: RC counts a 200 as delivered.
		fmt.Println("got", cb.Type, "for", cb.RecordID)
		return nil
	})
	// In a server: http.Handle("POST /v1/callbacks/recording", h)

	body := []byte(`{"type":3,"appKey":"your_appkey","recordId":"r1","output":{"fileName":"s_r_1.mp4","fileSize":333}}`)
	req := httptest.NewRequest(http.MethodPost, "/v1/callbacks/recording", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	signer := rc.Signer{AppKey: "your_appkey", Secret: "Y1W2MeFwwwRxa0"}
	signer.Apply(req, signer.Sign())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code)

	unsigned := httptest.NewRequest(http.MethodPost, "/v1/callbacks/recording", bytes.NewReader(body))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, unsigned)
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// got end for r1
	// 200
	// 401 {"error":{"code":"missing_signature","message":"rc: signature missing: no nonce, timestamp, signature header or query parameter"}}
}

func ExampleParseFileName() {
	p, ok := rc.ParseFileName("1K6-Q3uj6w7cfbGSq0ahA9_1775_123456_RongCloudRTC_1577616009233.mkv", "1K6-Q3uj6w7cfbGSq0ahA9", "1775")
	fmt.Printf("%v %+v\n", ok, p)
	fmt.Println(rc.FileName(rc.NameParts{SessionID: "s_1", RoomID: "r", Timestamp: 1577616009233, Format: "mp4"}))
	// Output:
	// true {SessionID:1K6-Q3uj6w7cfbGSq0ahA9 RoomID:1775 UserID:123456 StreamTag:RongCloudRTC Timestamp:1577616009233 Format:mkv}
	// s_1_r_1577616009233.mp4
}
