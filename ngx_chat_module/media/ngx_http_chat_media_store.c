/*
 * Copyright (C) ngx_chat_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>

#include "ngx_http_chat_media_int.h"


/*
 * The thread steps of an upload.  Those that read and write files of any
 * size run in the thread pool without a Mongo client; those that talk to
 * MongoDB are Mongo tasks, short ones.
 */

#define NGX_HTTP_CHAT_MEDIA_CHUNK  65536


static void ngx_http_chat_media_doc_read(const bson_t *b,
    ngx_http_chat_media_doc_t *doc);
static ngx_int_t ngx_http_chat_media_find_hash(mongoc_database_t *db,
    const char *hash, const char *owner, ngx_http_chat_media_doc_t *doc,
    bson_error_t *error);


/* copies [start, end) of in to a new file out; sha256 on the way */

static ngx_int_t
ngx_http_chat_media_copy(ngx_fd_t in, off_t start, off_t end, const char *out,
    EVP_MD_CTX *md, ngx_log_t *log)
{
    u_char    *buf;
    off_t      pos;
    size_t     want;
    ssize_t    n;
    ngx_fd_t   fd;
    ngx_int_t  rc;

    fd = -1;

    if (out) {
        fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd == -1) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "chat: open(\"%s\") failed", out);
            return NGX_ERROR;
        }
    }

    buf = ngx_alloc(NGX_HTTP_CHAT_MEDIA_CHUNK, log);
    if (buf == NULL) {
        if (fd != -1) {
            close(fd);
        }
        return NGX_ERROR;
    }

    rc = NGX_OK;

    for (pos = start; pos < end; pos += n) {
        want = ngx_min((off_t) NGX_HTTP_CHAT_MEDIA_CHUNK, end - pos);

        n = pread(in, buf, want, pos);
        if (n <= 0) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "chat: media read failed");
            rc = NGX_ERROR;
            break;
        }

        if (md && EVP_DigestUpdate(md, buf, n) != 1) {
            rc = NGX_ERROR;
            break;
        }

        if (fd != -1 && write(fd, buf, n) != n) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "chat: write(\"%s\") failed", out);
            rc = NGX_ERROR;
            break;
        }
    }

    ngx_free(buf);

    if (fd != -1 && close(fd) == -1) {
        rc = NGX_ERROR;
    }

    return rc;
}


static void
ngx_http_chat_media_result_free(ngx_http_chat_thread_t *t)
{
    ngx_http_chat_media_prepare_t  *res = t->result;

    if (res == NULL) {
        return;
    }

    /* a part file nobody took over: the request went away meanwhile */
    if (res->part_created) {
        (void) unlink(res->data_path);
    }

    ngx_free(res);
    t->result = NULL;
}


static void
ngx_http_chat_media_free(ngx_http_chat_mongo_task_t *t)
{
    if (t->result) {
        ngx_free(t->result);
        t->result = NULL;
    }
}


void
ngx_http_chat_media_prepare_run(ngx_http_chat_thread_t *t)
{
    ngx_http_chat_media_prepare_arg_t  *arg = t->arg;

    off_t                           start, end;
    u_char                          md_out[EVP_MAX_MD_SIZE];
    ssize_t                         n;
    ngx_fd_t                        fd;
    EVP_MD_CTX                     *md;
    unsigned int                    md_len;
    ngx_http_chat_media_prepare_t  *res;

    t->rc = NGX_OK;
    t->cleanup = ngx_http_chat_media_result_free;

    res = ngx_calloc(sizeof(ngx_http_chat_media_prepare_t), t->log);
    if (res == NULL) {
        t->rc = NGX_ERROR;
        return;
    }

    t->result = res;
    res->error = NGX_HTTP_CHAT_MEDIA_EIO;

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return;
    }

    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return;
    }

    fd = open(arg->body_path, O_RDONLY);
    if (fd == -1) {
        ngx_log_error(NGX_LOG_ERR, t->log, ngx_errno,
                      "chat: open(\"%s\") failed", arg->body_path);
        EVP_MD_CTX_free(md);
        return;
    }

    if (arg->boundary[0]) {
        res->error = ngx_http_chat_media_multipart(fd, arg->body_size,
                                                   arg->boundary, &start,
                                                   &end, res->declared,
                                                   sizeof(res->declared),
                                                   t->log);
        if (res->error != NGX_HTTP_CHAT_MEDIA_OK) {
            goto done;
        }

        res->error = NGX_HTTP_CHAT_MEDIA_EIO;

        (void) ngx_snprintf((u_char *) res->data_path,
                            sizeof(res->data_path) - 1, "%s.part%Z",
                            arg->body_path);
        res->part_created = 1;

        if (ngx_http_chat_media_copy(fd, start, end, res->data_path, md,
                                     t->log)
            != NGX_OK)
        {
            goto done;
        }

        close(fd);

        fd = open(res->data_path, O_RDONLY);
        if (fd == -1) {
            goto done;
        }

        res->data_size = end - start;

    } else {
        ngx_cpystrn((u_char *) res->data_path, (u_char *) arg->body_path,
                    sizeof(res->data_path));
        res->data_size = arg->body_size;

        if (ngx_http_chat_media_copy(fd, 0, arg->body_size, NULL, md, t->log)
            != NGX_OK)
        {
            goto done;
        }
    }

    if (res->data_size == 0) {
        res->error = NGX_HTTP_CHAT_MEDIA_EEMPTY;
        goto done;
    }

    if (EVP_DigestFinal_ex(md, md_out, &md_len) != 1) {
        goto done;
    }

    ngx_hex_dump((u_char *) res->hash, md_out, md_len);
    res->hash[64] = '\0';

    n = pread(fd, res->head, sizeof(res->head), 0);
    if (n <= 0) {
        goto done;
    }

    res->head_len = n;

    ngx_http_chat_media_dimensions(fd, res->data_size, res->head,
                                   res->head_len, &res->width, &res->height);

    if (ngx_http_chat_media_sniff(res->head, res->head_len, res->mime,
                                  sizeof(res->mime), t->log)
        != NGX_OK)
    {
        res->error = NGX_HTTP_CHAT_MEDIA_EMAGIC;
        goto done;
    }

    res->error = NGX_HTTP_CHAT_MEDIA_OK;

done:

    if (fd != -1) {
        close(fd);
    }

    EVP_MD_CTX_free(md);
}


/*
 * The owner's own document of these bytes, if any.  Otherwise whether
 * another owner's holds them: the bytes are shared, the document never
 * is, so only its storage and location come back (no id, no time: an
 * answer built from this must not tell that anybody uploaded them).
 */

void
ngx_http_chat_media_lookup_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_media_lookup_arg_t  *arg = t->arg;

    ngx_http_chat_media_doc_t   *res, other;

    t->cleanup = ngx_http_chat_media_free;

    res = ngx_calloc(sizeof(ngx_http_chat_media_doc_t), t->log);
    if (res == NULL) {
        return;
    }

    t->result = res;

    if (!bson_oid_is_valid(arg->owner, 24)) {
        bson_set_error(&t->error, 0, 0, "invalid owner id");
        return;
    }

    t->rc = ngx_http_chat_media_find_hash(db, arg->hash, arg->owner, res,
                                          &t->error);

    if (t->rc != NGX_OK || res->found) {
        return;
    }

    ngx_memzero(&other, sizeof(ngx_http_chat_media_doc_t));

    t->rc = ngx_http_chat_media_find_hash(db, arg->hash, NULL, &other,
                                          &t->error);

    if (t->rc == NGX_OK && other.found) {
        res->shared = 1;
        res->storage = other.storage;
        ngx_memcpy(res->location, other.location, sizeof(res->location));
    }
}


/* a document of these bytes: the owner's when owner is given */

static ngx_int_t
ngx_http_chat_media_find_hash(mongoc_database_t *db, const char *hash,
    const char *owner, ngx_http_chat_media_doc_t *doc, bson_error_t *error)
{
    bson_t                *filter;
    bson_oid_t             oid;
    ngx_int_t              rc;
    const bson_t          *b;
    mongoc_cursor_t       *cursor;
    mongoc_collection_t   *coll;

    coll = mongoc_database_get_collection(db, "media");
    if (coll == NULL) {
        return NGX_ERROR;
    }

    filter = BCON_NEW("hash", BCON_UTF8(hash));
    if (filter == NULL) {
        mongoc_collection_destroy(coll);
        return NGX_ERROR;
    }

    if (owner) {
        bson_oid_init_from_string(&oid, owner);

        if (!BSON_APPEND_OID(filter, "owner", &oid)) {
            bson_destroy(filter);
            mongoc_collection_destroy(coll);
            return NGX_ERROR;
        }
    }

    cursor = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);

    rc = NGX_OK;

    if (mongoc_cursor_next(cursor, &b)) {
        ngx_http_chat_media_doc_read(b, doc);

    } else if (mongoc_cursor_error(cursor, error)) {
        rc = NGX_ERROR;
    }

    mongoc_cursor_destroy(cursor);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);

    return rc;
}


static void
ngx_http_chat_media_doc_read(const bson_t *b, ngx_http_chat_media_doc_t *doc)
{
    const char   *key;
    bson_iter_t   it;

    if (!bson_iter_init(&it, b)) {
        return;
    }

    doc->found = 1;

    while (bson_iter_next(&it)) {
        key = bson_iter_key(&it);

        if (ngx_strcmp(key, "_id") == 0 && BSON_ITER_HOLDS_OID(&it)) {
            bson_oid_to_string(bson_iter_oid(&it), doc->id);

        } else if (ngx_strcmp(key, "hash") == 0
                   && BSON_ITER_HOLDS_UTF8(&it))
        {
            ngx_cpystrn((u_char *) doc->hash,
                        (u_char *) bson_iter_utf8(&it, NULL),
                        sizeof(doc->hash));

        } else if (ngx_strcmp(key, "mime") == 0
                   && BSON_ITER_HOLDS_UTF8(&it))
        {
            ngx_cpystrn((u_char *) doc->mime,
                        (u_char *) bson_iter_utf8(&it, NULL),
                        sizeof(doc->mime));

        } else if (ngx_strcmp(key, "location") == 0
                   && BSON_ITER_HOLDS_UTF8(&it))
        {
            ngx_cpystrn((u_char *) doc->location,
                        (u_char *) bson_iter_utf8(&it, NULL),
                        sizeof(doc->location));

        } else if (ngx_strcmp(key, "storage") == 0
                   && BSON_ITER_HOLDS_UTF8(&it))
        {
            doc->storage = ngx_strcmp(bson_iter_utf8(&it, NULL),
                                      "cloudinary") == 0
                           ? NGX_HTTP_CHAT_MEDIA_CLOUDINARY
                           : NGX_HTTP_CHAT_MEDIA_LOCAL;

        } else if (ngx_strcmp(key, "size") == 0
                   && BSON_ITER_HOLDS_NUMBER(&it))
        {
            doc->size = bson_iter_as_int64(&it);

        } else if (ngx_strcmp(key, "width") == 0
                   && BSON_ITER_HOLDS_NUMBER(&it))
        {
            doc->width = (int32_t) bson_iter_as_int64(&it);

        } else if (ngx_strcmp(key, "height") == 0
                   && BSON_ITER_HOLDS_NUMBER(&it))
        {
            doc->height = (int32_t) bson_iter_as_int64(&it);

        } else if (ngx_strcmp(key, "createdAt") == 0
                   && BSON_ITER_HOLDS_DATE_TIME(&it))
        {
            doc->created_at = bson_iter_date_time(&it);
        }
    }
}


/* <root>/<hash[0:2]>/<hash>: a hard link when possible, else a copy */

static ngx_int_t
ngx_http_chat_media_store_local(ngx_http_chat_media_save_arg_t *arg,
    ngx_log_t *log)
{
    u_char    dir[NGX_HTTP_CHAT_MEDIA_PATH + 8];
    u_char    path[NGX_HTTP_CHAT_MEDIA_PATH + 80];
    u_char    tmp[NGX_HTTP_CHAT_MEDIA_PATH + 100];
    ngx_fd_t  fd;

    (void) ngx_snprintf(dir, sizeof(dir) - 1, "%s/%*s%Z", arg->root,
                        (size_t) 2, arg->doc.hash);
    (void) ngx_snprintf(path, sizeof(path) - 1, "%s/%s%Z", (char *) dir,
                        arg->doc.hash);

    if ((mkdir(arg->root, 0750) == -1 && ngx_errno != NGX_EEXIST)
        || (mkdir((char *) dir, 0750) == -1 && ngx_errno != NGX_EEXIST))
    {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "chat: mkdir(\"%s\") failed", dir);
        return NGX_ERROR;
    }

    if (link(arg->data_path, (char *) path) == 0 || ngx_errno == NGX_EEXIST) {
        return NGX_OK;
    }

    if (ngx_errno != NGX_EXDEV) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "chat: link(\"%s\", \"%s\") failed", arg->data_path,
                      path);
        return NGX_ERROR;
    }

    /* another file system: copy, then rename into place */
    (void) ngx_snprintf(tmp, sizeof(tmp) - 1, "%s.%P.tmp%Z", (char *) path,
                        ngx_pid);

    fd = open(arg->data_path, O_RDONLY);
    if (fd == -1) {
        return NGX_ERROR;
    }

    if (ngx_http_chat_media_copy(fd, 0, arg->doc.size, (char *) tmp, NULL,
                                 log)
        != NGX_OK
        || rename((char *) tmp, (char *) path) == -1)
    {
        close(fd);
        (void) unlink((char *) tmp);
        return NGX_ERROR;
    }

    close(fd);

    return NGX_OK;
}


/* the file under chat_media_root, before its document is inserted */

void
ngx_http_chat_media_store_run(ngx_http_chat_thread_t *t)
{
    t->rc = ngx_http_chat_media_store_local(t->arg, t->log);
}


void
ngx_http_chat_media_save_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_media_save_arg_t  *arg = t->arg;

    bson_t                     *doc;
    bson_oid_t                  oid, owner;
    mongoc_collection_t        *coll;
    ngx_http_chat_media_doc_t  *res;

    t->cleanup = ngx_http_chat_media_free;

    res = ngx_calloc(sizeof(ngx_http_chat_media_doc_t), t->log);
    if (res == NULL) {
        return;
    }

    t->result = res;

    *res = arg->doc;
    res->created_at = (int64_t) ngx_time() * 1000;

    bson_oid_init(&oid, NULL);
    bson_oid_to_string(&oid, res->id);
    bson_oid_init_from_string(&owner, arg->owner);

    doc = BCON_NEW("_id", BCON_OID(&oid),
                   "owner", BCON_OID(&owner),
                   "hash", BCON_UTF8(res->hash),
                   "mime", BCON_UTF8(res->mime),
                   "size", BCON_INT64(res->size),
                   "storage", BCON_UTF8(res->storage
                                        == NGX_HTTP_CHAT_MEDIA_CLOUDINARY
                                        ? "cloudinary" : "local"),
                   "location", BCON_UTF8(res->location),
                   "createdAt", BCON_DATE_TIME(res->created_at));
    if (doc == NULL) {
        return;
    }

    if (res->width > 0) {
        BSON_APPEND_INT32(doc, "width", res->width);
        BSON_APPEND_INT32(doc, "height", res->height);
    }

    coll = mongoc_database_get_collection(db, "media");

    if (mongoc_collection_insert_one(coll, doc, NULL, NULL, &t->error)) {
        t->rc = NGX_OK;

    } else if (t->error.code == 11000
               || ngx_strstr(t->error.message, "UNIQUE constraint failed"))
    {
        /*
         * the same owner stored the same bytes meanwhile (the unique key
         * is {hash, owner}): answer with that one
         */
        ngx_memzero(res, sizeof(ngx_http_chat_media_doc_t));

        if (ngx_http_chat_media_find_hash(db, arg->doc.hash, arg->owner, res,
                                          &t->error)
            == NGX_OK && res->found)
        {
            t->rc = NGX_OK;
        }
    }

    mongoc_collection_destroy(coll);
    bson_destroy(doc);
}


void
ngx_http_chat_media_avatar_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_media_ids_arg_t  *arg = t->arg;

    bson_t                *filter, *update;
    bson_oid_t             oid;
    mongoc_collection_t   *coll;

    if (!bson_oid_is_valid(arg->user_id, 24)) {
        bson_set_error(&t->error, 0, 0, "invalid user id");
        return;
    }

    bson_oid_init_from_string(&oid, arg->user_id);

    filter = BCON_NEW("_id", BCON_OID(&oid));
    update = BCON_NEW("$set", "{",
                          "avatar", BCON_UTF8(arg->media_id),
                          "updatedAt", BCON_DATE_TIME((int64_t) ngx_time()
                                                      * 1000),
                      "}");

    if (filter && update) {
        coll = mongoc_database_get_collection(db, "users");

        if (mongoc_collection_update_one(coll, filter, update, NULL,
                                         &t->reply, &t->error))
        {
            t->rc = NGX_OK;
        }

        mongoc_collection_destroy(coll);
    }

    if (filter) {
        bson_destroy(filter);
    }

    if (update) {
        bson_destroy(update);
    }
}


void
ngx_http_chat_media_find_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_media_ids_arg_t  *arg = t->arg;

    bson_t                     *filter;
    bson_oid_t                  oid;
    const bson_t               *b;
    mongoc_cursor_t            *cursor;
    mongoc_collection_t        *coll;
    ngx_http_chat_media_doc_t  *res;

    t->cleanup = ngx_http_chat_media_free;

    res = ngx_calloc(sizeof(ngx_http_chat_media_doc_t), t->log);
    if (res == NULL) {
        return;
    }

    t->result = res;

    bson_oid_init_from_string(&oid, arg->media_id);

    filter = BCON_NEW("_id", BCON_OID(&oid));
    if (filter == NULL) {
        return;
    }

    coll = mongoc_database_get_collection(db, "media");
    cursor = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);

    if (mongoc_cursor_next(cursor, &b)) {
        ngx_http_chat_media_doc_read(b, res);
        t->rc = NGX_OK;

    } else if (!mongoc_cursor_error(cursor, &t->error)) {
        t->rc = NGX_OK;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);
    bson_destroy(filter);
}


/*
 * {hash, owner} unique: one document per owner and content, each owner's
 * own id and time over bytes stored once.  The hash leads, so that a
 * lookup by the hash alone (anybody's copy of these bytes) uses it too.
 * Builds before it had "hash_1" unique, one document per content, which
 * would refuse a second owner's: dropped once the new one exists.
 */

static void
ngx_http_chat_media_index_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    bson_t        *cmd, reply;
    bson_error_t   error;

    /* one index per createIndexes command: FerretDB mishandles several */
    cmd = BCON_NEW("createIndexes", BCON_UTF8("media"),
                   "indexes", "[", "{",
                       "key", "{", "hash", BCON_INT32(1),
                                   "owner", BCON_INT32(1), "}",
                       "name", BCON_UTF8("hash_1_owner_1"),
                       "unique", BCON_BOOL(true),
                   "}", "]");
    if (cmd == NULL) {
        return;
    }

    if (!mongoc_database_write_command_with_opts(db, cmd, NULL, &reply,
                                                 &error))
    {
        ngx_log_error(NGX_LOG_ERR, t->log, 0,
                      "chat: cannot create index media.hash_1_owner_1: %s",
                      error.message);
        bson_destroy(&reply);
        bson_destroy(cmd);
        return;
    }

    bson_destroy(&reply);
    bson_destroy(cmd);

    cmd = BCON_NEW("dropIndexes", BCON_UTF8("media"),
                   "index", BCON_UTF8("hash_1"));
    if (cmd == NULL) {
        return;
    }

    /* 27: IndexNotFound, as it is once dropped (26: no collection) */
    if (mongoc_database_write_command_with_opts(db, cmd, NULL, &reply,
                                                &error)
        || error.code == 27 || error.code == 26)
    {
        t->rc = NGX_OK;

    } else {
        ngx_log_error(NGX_LOG_ERR, t->log, 0,
                      "chat: cannot drop the old index media.hash_1 "
                      "(a second owner of the same bytes is refused until "
                      "it is dropped): %s (%d)", error.message,
                      (int) error.code);
    }

    bson_destroy(&reply);
    bson_destroy(cmd);
}


void
ngx_http_chat_media_ensure_index(void)
{
    ngx_http_chat_mongo_task_t  *t;

    t = ngx_http_chat_mongo_task_create(ngx_cycle->log,
                                        ngx_http_chat_media_index_run, NULL,
                                        NULL);
    if (t) {
        (void) ngx_http_chat_mongo_post(t);
    }
}
