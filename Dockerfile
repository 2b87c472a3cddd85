# syntax=docker/dockerfile:1
# Build: docker build --build-arg VERSION=$(git describe --always) -t token-service .

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# A static binary: the final image has no libc, shell or curl.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/token-service .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/token-service /token-service
USER nonroot:nonroot
# Safe by default: production rules (real credentials, secrets of 32+ characters, JSON logs).
ENV APP_ENV=production
EXPOSE 3001
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/token-service", "healthcheck"]
ENTRYPOINT ["/token-service"]
