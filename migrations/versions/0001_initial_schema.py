"""Initial schema: the whole data model of SPEC section 2.

Users (with a rotating session token), contacts, segments, the versioned weekly schedule,
broadcasts (at most one `upcoming`, by a partial unique index) and their segment mix, campaigns,
uploads with their rows, outbound messages (unique per send/contact/step, indexed for the tick's
queries and per-send statistics), inbound messages (unique provider id), the Missive mirror, job
runs, the audit log, webhook payload logs, API tokens and settings.
Statuses are VARCHAR + CHECK (portable to SQLite); timestamps are timestamptz.

Revision ID: e159fceb7848
Revises:
Create Date: 2026-11-24 02:51:16.358380
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = 'e159fceb7848'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('contacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('zip_code', sa.String(length=12), nullable=True),
    sa.Column('time_zone', sa.String(length=64), nullable=True),
    sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('unsubscribed', sa.Boolean(), nullable=False),
    sa.Column('unsubscribed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unsubscribe_reason', sa.String(length=200), nullable=True),
    sa.Column('excluded', sa.Boolean(), nullable=False),
    sa.Column('excluded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('exclude_reason', sa.Enum('manual', 'undeliverable', 'invalid number', name='exclude_reason', native_enum=False, create_constraint=True, length=18), nullable=True),
    sa.Column('source', sa.Enum('conversation', 'upload', name='contact_source', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contacts')),
    sa.UniqueConstraint('phone', name=op.f('uq_contacts_phone'))
    )
    op.create_index('ix_contacts_eligibility', 'contacts', ['unsubscribed', 'excluded', 'source'], unique=False)
    op.create_index('ix_contacts_zip_code', 'contacts', ['zip_code'], unique=False)
    op.create_table('job_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.Enum('running', 'success', 'failed', 'skipped', name='job_outcome', native_enum=False, create_constraint=True, length=11), nullable=False),
    sa.Column('counts', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_runs'))
    )
    op.create_index('ix_job_runs_name_started_at', 'job_runs', ['name', 'started_at'], unique=False)
    op.create_table('missive_labels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('missive_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('parent_missive_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_missive_labels')),
    sa.UniqueConstraint('missive_id', name=op.f('uq_missive_labels_missive_id'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.Enum('viewer', 'operator', 'admin', name='user_role', native_enum=False, create_constraint=True, length=12), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('session_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('email = lower(email)', name=op.f('ck_users_email_lowercase')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('webhook_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('signature_ok', sa.Boolean(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('outcome', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_events'))
    )
    op.create_index('ix_webhook_events_received_at', 'webhook_events', ['received_at'], unique=False)
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('token_hash', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_index('ix_api_tokens_user_id', 'api_tokens', ['user_id'], unique=False)
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=254), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('object_type', sa.String(length=40), nullable=True),
    sa.Column('object_id', sa.String(length=64), nullable=True),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('ip_address', sa.String(length=45), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_audit_log_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_created_at', 'audit_log', ['created_at'], unique=False)
    op.create_index('ix_audit_log_object_type_object_id', 'audit_log', ['object_type', 'object_id'], unique=False)
    op.create_index('ix_audit_log_user_id', 'audit_log', ['user_id'], unique=False)
    op.create_table('broadcasts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('first_message', sa.Text(), nullable=False),
    sa.Column('second_message', sa.Text(), nullable=True),
    sa.Column('original_first_message', sa.Text(), nullable=True),
    sa.Column('original_second_message', sa.Text(), nullable=True),
    sa.Column('delay_seconds', sa.Integer(), nullable=False),
    sa.Column('batch_size', sa.Integer(), nullable=False),
    sa.Column('run_at_override', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.Enum('upcoming', 'sending', 'sent', 'cancelled', name='broadcast_status', native_enum=False, create_constraint=True, length=13), nullable=False),
    sa.Column('scheduled_for', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recipient_count', sa.Integer(), nullable=True),
    sa.Column('started_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('batch_size > 0', name=op.f('ck_broadcasts_batch_size_positive')),
    sa.CheckConstraint('delay_seconds >= 0', name=op.f('ck_broadcasts_delay_not_negative')),
    sa.ForeignKeyConstraint(['started_by_id'], ['users.id'], name=op.f('fk_broadcasts_started_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_broadcasts'))
    )
    op.create_index('ix_broadcasts_status_started_at', 'broadcasts', ['status', 'started_at'], unique=False)
    op.create_index('uq_broadcasts_one_upcoming', 'broadcasts', ['status'], unique=True, postgresql_where=sa.text("status = 'upcoming'"), sqlite_where=sa.text("status = 'upcoming'"))
    op.create_table('missive_conversations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('missive_id', sa.String(length=64), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('web_url', sa.String(length=500), nullable=True),
    sa.Column('app_url', sa.String(length=500), nullable=True),
    sa.Column('closed', sa.Boolean(), nullable=False),
    sa.Column('double_failure_archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_missive_conversations_contact_id_contacts'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_missive_conversations')),
    sa.UniqueConstraint('missive_id', name=op.f('uq_missive_conversations_missive_id'))
    )
    op.create_index('ix_missive_conversations_contact_id', 'missive_conversations', ['contact_id'], unique=False)
    op.create_table('schedule_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('monday', sa.Time(), nullable=True),
    sa.Column('tuesday', sa.Time(), nullable=True),
    sa.Column('wednesday', sa.Time(), nullable=True),
    sa.Column('thursday', sa.Time(), nullable=True),
    sa.Column('friday', sa.Time(), nullable=True),
    sa.Column('saturday', sa.Time(), nullable=True),
    sa.Column('sunday', sa.Time(), nullable=True),
    sa.Column('default_batch_size', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_schedule_versions_created_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule_versions'))
    )
    op.create_table('segments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('rule', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('raw_sql', sa.Text(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_segments_created_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segments')),
    sa.UniqueConstraint('name', name=op.f('uq_segments_name'))
    )
    op.create_table('settings',
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('value', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_settings_updated_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_settings'))
    )
    op.create_table('uploads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('purpose', sa.Enum('contact_import', 'campaign_list', 'personalized', name='upload_purpose', native_enum=False, create_constraint=True, length=18), nullable=False),
    sa.Column('status', sa.Enum('pending', 'validating', 'validated', 'importing', 'done', 'failed', name='upload_status', native_enum=False, create_constraint=True, length=14), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('total_rows', sa.Integer(), nullable=False),
    sa.Column('valid_rows', sa.Integer(), nullable=False),
    sa.Column('invalid_rows', sa.Integer(), nullable=False),
    sa.Column('duplicate_rows', sa.Integer(), nullable=False),
    sa.Column('unsubscribed_rows', sa.Integer(), nullable=False),
    sa.Column('created_count', sa.Integer(), nullable=False),
    sa.Column('updated_count', sa.Integer(), nullable=False),
    sa.Column('columns', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('phone_column', sa.String(length=120), nullable=True),
    sa.Column('errors', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_uploads_uploaded_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_uploads'))
    )
    op.create_table('broadcast_segments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('broadcast_id', sa.Integer(), nullable=False),
    sa.Column('segment_id', sa.Integer(), nullable=False),
    sa.Column('ratio', sa.Integer(), nullable=False),
    sa.Column('is_filler', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.CheckConstraint('ratio >= 0 AND ratio <= 100', name=op.f('ck_broadcast_segments_ratio_percent')),
    sa.ForeignKeyConstraint(['broadcast_id'], ['broadcasts.id'], name=op.f('fk_broadcast_segments_broadcast_id_broadcasts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['segment_id'], ['segments.id'], name=op.f('fk_broadcast_segments_segment_id_segments'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_broadcast_segments')),
    sa.UniqueConstraint('broadcast_id', 'segment_id', name=op.f('uq_broadcast_segments_broadcast_id_segment_id'))
    )
    op.create_index('uq_broadcast_segments_one_filler', 'broadcast_segments', ['broadcast_id'], unique=True, postgresql_where=sa.text('is_filler'), sqlite_where=sa.text('is_filler'))
    op.create_table('campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('first_message', sa.Text(), nullable=False),
    sa.Column('second_message', sa.Text(), nullable=True),
    sa.Column('delay_seconds', sa.Integer(), nullable=False),
    sa.Column('run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.Enum('draft', 'scheduled', 'sending', 'sent', 'cancelled', name='campaign_status', native_enum=False, create_constraint=True, length=13), nullable=False),
    sa.Column('target_kind', sa.Enum('segments', 'uploaded_list', 'personalized', name='campaign_target', native_enum=False, create_constraint=True, length=17), nullable=False),
    sa.Column('targeting', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('upload_id', sa.Integer(), nullable=True),
    sa.Column('message_column', sa.String(length=120), nullable=True),
    sa.Column('missive_label_name', sa.String(length=200), nullable=True),
    sa.Column('missive_label_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('estimated_recipients', sa.Integer(), nullable=True),
    sa.Column('actual_recipients', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('delay_seconds >= 0', name=op.f('ck_campaigns_delay_not_negative')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_campaigns_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['upload_id'], ['uploads.id'], name=op.f('fk_campaigns_upload_id_uploads'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    op.create_index('ix_campaigns_status_run_at', 'campaigns', ['status', 'run_at'], unique=False)
    op.create_table('missive_conversation_labels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('label_id', sa.Integer(), nullable=False),
    sa.Column('first_applied_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_applied_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('removed', sa.Boolean(), nullable=False),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['conversation_id'], ['missive_conversations.id'], name=op.f('fk_missive_conversation_labels_conversation_id_missive_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['label_id'], ['missive_labels.id'], name=op.f('fk_missive_conversation_labels_label_id_missive_labels'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_missive_conversation_labels')),
    sa.UniqueConstraint('conversation_id', 'label_id', name=op.f('uq_missive_conversation_labels_conversation_id_label_id'))
    )
    op.create_index('ix_missive_conversation_labels_label_id_removed_last_applied_at', 'missive_conversation_labels', ['label_id', 'removed', 'last_applied_at'], unique=False)
    op.create_table('upload_contacts',
    sa.Column('upload_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('row_number', sa.Integer(), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_upload_contacts_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['upload_id'], ['uploads.id'], name=op.f('fk_upload_contacts_upload_id_uploads'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('upload_id', 'contact_id', name=op.f('pk_upload_contacts'))
    )
    op.create_index('ix_upload_contacts_contact_id', 'upload_contacts', ['contact_id'], unique=False)
    op.create_table('outbound_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('broadcast_id', sa.Integer(), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Enum('first', 'second', name='message_step', native_enum=False, create_constraint=True, length=10), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('segment_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('scheduled', 'queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'retrying', 'unknown', 'cancelled', 'skipped', name='message_status', native_enum=False, create_constraint=True, length=15), nullable=False),
    sa.Column('transport', sa.String(length=20), nullable=True),
    sa.Column('provider_sid', sa.String(length=64), nullable=True),
    sa.Column('missive_draft_id', sa.String(length=64), nullable=True),
    sa.Column('missive_conversation_id', sa.String(length=64), nullable=True),
    sa.Column('provider_status', sa.String(length=40), nullable=True),
    sa.Column('error_code', sa.String(length=20), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('scheduled_for', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sms_segments', sa.Integer(), nullable=False),
    sa.Column('cancel_reason', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(broadcast_id IS NULL) <> (campaign_id IS NULL)', name=op.f('ck_outbound_messages_one_send')),
    sa.ForeignKeyConstraint(['broadcast_id'], ['broadcasts.id'], name=op.f('fk_outbound_messages_broadcast_id_broadcasts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_outbound_messages_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_outbound_messages_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['segment_id'], ['segments.id'], name=op.f('fk_outbound_messages_segment_id_segments'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_messages')),
    sa.UniqueConstraint('broadcast_id', 'contact_id', 'step', name=op.f('uq_outbound_messages_broadcast_id_contact_id_step')),
    sa.UniqueConstraint('campaign_id', 'contact_id', 'step', name=op.f('uq_outbound_messages_campaign_id_contact_id_step')),
    sa.UniqueConstraint('provider_sid', name=op.f('uq_outbound_messages_provider_sid'))
    )
    op.create_index('ix_outbound_messages_broadcast_id_status', 'outbound_messages', ['broadcast_id', 'status'], unique=False)
    op.create_index('ix_outbound_messages_campaign_id_status', 'outbound_messages', ['campaign_id', 'status'], unique=False)
    op.create_index('ix_outbound_messages_contact_id_created_at', 'outbound_messages', ['contact_id', 'created_at'], unique=False)
    op.create_index('ix_outbound_messages_missive_conversation_id', 'outbound_messages', ['missive_conversation_id'], unique=False)
    op.create_index('ix_outbound_messages_segment_id', 'outbound_messages', ['segment_id'], unique=False)
    op.create_index('ix_outbound_messages_status_claimed_at', 'outbound_messages', ['status', 'claimed_at'], unique=False)
    op.create_index('ix_outbound_messages_status_next_attempt_at', 'outbound_messages', ['status', 'next_attempt_at'], unique=False)
    op.create_index('ix_outbound_messages_status_scheduled_for', 'outbound_messages', ['status', 'scheduled_for'], unique=False)
    op.create_table('inbound_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('provider_id', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('reply_to_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('keyword', sa.Enum('stop', 'start', 'help', name='inbound_keyword', native_enum=False, create_constraint=True, length=9), nullable=True),
    sa.Column('missive_conversation_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_inbound_messages_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reply_to_id'], ['outbound_messages.id'], name=op.f('fk_inbound_messages_reply_to_id_outbound_messages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_messages')),
    sa.UniqueConstraint('provider_id', name=op.f('uq_inbound_messages_provider_id'))
    )
    op.create_index('ix_inbound_messages_contact_id_received_at', 'inbound_messages', ['contact_id', 'received_at'], unique=False)
    op.create_index('ix_inbound_messages_phone_received_at', 'inbound_messages', ['phone', 'received_at'], unique=False)
    op.create_index('ix_inbound_messages_reply_to_id', 'inbound_messages', ['reply_to_id'], unique=False)


def downgrade():
    op.drop_index('ix_inbound_messages_reply_to_id', table_name='inbound_messages')
    op.drop_index('ix_inbound_messages_phone_received_at', table_name='inbound_messages')
    op.drop_index('ix_inbound_messages_contact_id_received_at', table_name='inbound_messages')
    op.drop_table('inbound_messages')
    op.drop_index('ix_outbound_messages_status_scheduled_for', table_name='outbound_messages')
    op.drop_index('ix_outbound_messages_status_next_attempt_at', table_name='outbound_messages')
    op.drop_index('ix_outbound_messages_status_claimed_at', table_name='outbound_messages')
    op.drop_index('ix_outbound_messages_segment_id', table_name='outbound_messages')
    op.drop_index('ix_outbound_messages_missive_conversation_id', table_name='outbound_messages')
    op.drop_index('ix_outbound_messages_contact_id_created_at', table_name='outbound_messages')
    op.drop_index('ix_outbound_messages_campaign_id_status', table_name='outbound_messages')
    op.drop_index('ix_outbound_messages_broadcast_id_status', table_name='outbound_messages')
    op.drop_table('outbound_messages')
    op.drop_index('ix_upload_contacts_contact_id', table_name='upload_contacts')
    op.drop_table('upload_contacts')
    op.drop_index('ix_missive_conversation_labels_label_id_removed_last_applied_at', table_name='missive_conversation_labels')
    op.drop_table('missive_conversation_labels')
    op.drop_index('ix_campaigns_status_run_at', table_name='campaigns')
    op.drop_table('campaigns')
    op.drop_index('uq_broadcast_segments_one_filler', table_name='broadcast_segments', postgresql_where=sa.text('is_filler'), sqlite_where=sa.text('is_filler'))
    op.drop_table('broadcast_segments')
    op.drop_table('uploads')
    op.drop_table('settings')
    op.drop_table('segments')
    op.drop_table('schedule_versions')
    op.drop_index('ix_missive_conversations_contact_id', table_name='missive_conversations')
    op.drop_table('missive_conversations')
    op.drop_index('uq_broadcasts_one_upcoming', table_name='broadcasts', postgresql_where=sa.text("status = 'upcoming'"), sqlite_where=sa.text("status = 'upcoming'"))
    op.drop_index('ix_broadcasts_status_started_at', table_name='broadcasts')
    op.drop_table('broadcasts')
    op.drop_index('ix_audit_log_user_id', table_name='audit_log')
    op.drop_index('ix_audit_log_object_type_object_id', table_name='audit_log')
    op.drop_index('ix_audit_log_created_at', table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_index('ix_api_tokens_user_id', table_name='api_tokens')
    op.drop_table('api_tokens')
    op.drop_index('ix_webhook_events_received_at', table_name='webhook_events')
    op.drop_table('webhook_events')
    op.drop_table('users')
    op.drop_table('missive_labels')
    op.drop_index('ix_job_runs_name_started_at', table_name='job_runs')
    op.drop_table('job_runs')
    op.drop_index('ix_contacts_zip_code', table_name='contacts')
    op.drop_index('ix_contacts_eligibility', table_name='contacts')
    op.drop_table('contacts')
