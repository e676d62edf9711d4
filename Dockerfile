# Build a static binary, then ship it alone on a minimal non-root image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/livehub ./cmd/livehub

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/livehub /livehub
USER nonroot:nonroot
EXPOSE 8080
ENV LIVEHUB_HTTP_ADDR=:8080
ENTRYPOINT ["/livehub"]
