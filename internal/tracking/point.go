package tracking

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// pointInput is a location as the courier app sends it: exactly these keys.
// Pointers tell a missing field from a zero.
type pointInput struct {
	Lat        *float64 `json:"lat"`
	Lng        *float64 `json:"lng"`
	Accuracy   *float64 `json:"accuracy"`
	Heading    *float64 `json:"heading"`
	Speed      *float64 `json:"speed"`
	DeviceTime *int64   `json:"device_time"`
}

// PointError is a point refused for its content; Field names the field at
// fault when one is.
type PointError struct {
	Field   string
	Message string
}

func (e *PointError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func pointErr(field, format string, args ...any) *PointError {
	return &PointError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// ParsePoint reads a location published by the courier app:
// {"lat","lng","accuracy","heading","speed","device_time"} and nothing else;
// lat, lng and device_time are required, the rest default to zero. The
// point's ranges are checked too.
func ParsePoint(data []byte) (Point, error) {
	p, err := DecodePoint(data)
	if err != nil {
		return Point{}, err
	}
	return p, p.Validate()
}

// DecodePoint reads a location as ParsePoint does, without checking its
// ranges: a batch reports those per point.
func DecodePoint(data []byte) (Point, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var in pointInput
	if err := dec.Decode(&in); err != nil {
		return Point{}, decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Point{}, pointErr("", "the location must be one JSON object")
	}
	return in.point()
}

func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return pointErr(typeErr.Field, "must be a number")
	case bytes.HasPrefix([]byte(err.Error()), []byte("json: unknown field ")):
		return pointErr("", "%s; a location has only lat, lng, accuracy, heading, speed and device_time",
			err.Error()[len("json: "):])
	}
	return pointErr("", "the location must be a JSON object")
}

func (in pointInput) point() (Point, error) {
	switch {
	case in.Lat == nil:
		return Point{}, pointErr("lat", "is required")
	case in.Lng == nil:
		return Point{}, pointErr("lng", "is required")
	case in.DeviceTime == nil:
		return Point{}, pointErr("device_time", "is required (Unix milliseconds)")
	}
	p := Point{Lat: *in.Lat, Lng: *in.Lng, DeviceTime: *in.DeviceTime}
	if in.Accuracy != nil {
		p.Accuracy = *in.Accuracy
	}
	if in.Heading != nil {
		p.Heading = *in.Heading
	}
	if in.Speed != nil {
		p.Speed = *in.Speed
	}
	return p, nil
}

// Bounds of a point's fields.
const (
	maxAccuracyMeters = 5000
	// minDeviceTime is 2020-01-01: a device clock before it is not set.
	minDeviceTime = 1577836800000
)

// Validate checks the ranges of a point's fields.
func (p Point) Validate() error {
	switch {
	case !(p.Lat >= -90 && p.Lat <= 90):
		return pointErr("lat", "must be between -90 and 90")
	case !(p.Lng >= -180 && p.Lng <= 180):
		return pointErr("lng", "must be between -180 and 180")
	case !(p.Accuracy >= 0 && p.Accuracy <= maxAccuracyMeters):
		return pointErr("accuracy", "must be between 0 and %d meters", maxAccuracyMeters)
	case !(p.Heading >= 0 && p.Heading <= 360):
		return pointErr("heading", "must be between 0 and 360 degrees")
	case !(p.Speed >= 0) || math.IsInf(p.Speed, 0):
		return pointErr("speed", "must not be negative")
	case p.DeviceTime < minDeviceTime:
		return pointErr("device_time", "must be Unix milliseconds")
	}
	return nil
}

// follow checks that p may follow prev: a later device time, and a speed
// between them a vehicle can reach.
func follow(prev *Point, p Point, maxKmh float64) error {
	if prev == nil {
		return nil
	}
	if p.DeviceTime <= prev.DeviceTime {
		return pointErr("device_time", "must be after the last accepted point's (%d)", prev.DeviceTime)
	}
	dt := time.Duration(p.DeviceTime-prev.DeviceTime) * time.Millisecond
	kmh := distanceMeters(prev.Lat, prev.Lng, p.Lat, p.Lng) / dt.Seconds() * 3.6
	if kmh > maxKmh {
		return pointErr("", "implausible speed: %.0f km/h since the last accepted point (at most %.0f)", kmh, maxKmh)
	}
	return nil
}

// earthRadiusMeters is the mean radius of the Earth.
const earthRadiusMeters = 6371008.8

// distanceMeters is the great-circle distance between two points (haversine).
func distanceMeters(lat1, lng1, lat2, lng2 float64) float64 {
	rad := math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLng := (lng2 - lng1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * earthRadiusMeters * math.Asin(math.Min(1, math.Sqrt(a)))
}
