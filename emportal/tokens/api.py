"""REST endpoints for the user's own API tokens: list, create (the key is in the answer,
once), revoke."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from emportal.errors import ApplicationError
from emportal.tokens import selectors, services
from emportal.tokens.authentication import ApiTokenAuthentication


class TokenOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="the key's first characters")
    created = serializers.DateTimeField()
    last_used = serializers.DateTimeField(allow_null=True)


class TokenCreatedOutput(TokenOutput):
    key = serializers.CharField(help_text="the token itself: shown in this answer only")


class TokenCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=services.NAME_MAX_LENGTH)


class TokenListApi(APIView):
    @extend_schema(responses=TokenOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(TokenOutput(selectors.token_list_for_user(request.user), many=True).data)

    @extend_schema(request=TokenCreateInput, responses={201: TokenCreatedOutput})
    def post(self, request: Request) -> Response:
        """Create a token (logged in with the session only: a leaked token must not be able to
        mint itself a successor that outlives its revocation)."""
        if isinstance(request.successful_authenticator, ApiTokenAuthentication):
            raise ApplicationError("tokens are created from a logged-in session (the account page), not with a token",
                                   code="session_required", status_code=403)
        data = TokenCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        token, key = services.token_create(request.user, data.validated_data["name"])
        return Response({**TokenOutput(token).data, "key": key}, status=status.HTTP_201_CREATED)


class TokenDetailApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, token_id: int) -> Response:
        """Revoke one of your tokens (a token may revoke itself); it stops working at once."""
        services.token_revoke(request.user, token_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
