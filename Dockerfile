# ngx_chat_module: NGINX built from source with the module linked in.
# The steps are the project's own scripts, the same ones the tests use.

FROM debian:bookworm AS build

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates perl sudo \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY config Dockerfile ./
COPY ngx_chat_module ngx_chat_module
COPY nginx.conf.d nginx.conf.d
COPY tools tools

# the build dependencies and Debian's NGINX source, then the static build
RUN tools/bootstrap --build && tools/build --static


FROM debian:bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
        libpcre2-8-0 zlib1g libssl3 libhiredis0.14 libmongoc-1.0-0 \
        libbson-1.0-0 libjansson4 libjwt0 libcurl4 libmagic1 \
        libphonenumber8 \
    && rm -rf /var/lib/apt/lists/*

COPY --from=build /src/build/static/sbin/nginx /usr/sbin/nginx
COPY nginx.conf.d /etc/nginx/chat
COPY tools/dev-secrets /usr/local/bin/chat-dev-secrets

# the static binary needs no load_module line
# the development secrets of this image, made as it is built
RUN chat-dev-secrets /etc/nginx/chat \
    && sed -i '/^load_module/d' /etc/nginx/chat/nginx.conf \
    && mkdir -p /var/lib/nginx /etc/nginx/chat/run /etc/nginx/chat/logs \
    && ln -sf /dev/stderr /etc/nginx/chat/logs/error.log

EXPOSE 8080
STOPSIGNAL SIGQUIT
CMD ["nginx", "-p", "/etc/nginx/chat/", "-c", "nginx.conf"]
